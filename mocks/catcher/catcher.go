package catcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ErrNotFound is a message id the catcher does not hold.
var ErrNotFound = errors.New("no such message")

// Address is one mailbox of a message header, as the catcher reports it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is a message as the catcher lists it, without its body. Bcc holds the
// envelope recipients that no header names.
type Summary struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      *Address  `json:"From"`
	To        []Address `json:"To"`
	Cc        []Address `json:"Cc"`
	Bcc       []Address `json:"Bcc"`
	Subject   string    `json:"Subject"`
	Created   time.Time `json:"Created"`
}

// Message is one message with its plain-text body. Date is the Date header, or the time
// the catcher received the message when it has none.
type Message struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      *Address  `json:"From"`
	To        []Address `json:"To"`
	Cc        []Address `json:"Cc"`
	Bcc       []Address `json:"Bcc"`
	Subject   string    `json:"Subject"`
	Date      time.Time `json:"Date"`
	Text      string    `json:"Text"`
}

// AddressedTo reports whether addr is among the recipients, compared without case.
func (s Summary) AddressedTo(addr string) bool { return addressedTo(addr, s.To, s.Cc, s.Bcc) }

// AddressedTo reports whether addr is among the recipients, compared without case.
func (m Message) AddressedTo(addr string) bool { return addressedTo(addr, m.To, m.Cc, m.Bcc) }

func addressedTo(addr string, lists ...[]Address) bool {
	for _, list := range lists {
		for _, a := range list {
			if strings.EqualFold(a.Address, addr) {
				return true
			}
		}
	}
	return false
}

// idPattern is the catcher's message id: 22 base-62 characters. Checking it keeps a
// caller's id from reaching any other API route, and from naming the catcher's alias
// "latest", which is not one message but whichever came last.
var idPattern = regexp.MustCompile(`^[0-9A-Za-z]{22}$`)

// ValidID reports whether id has the form of a catcher message id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Client reads the catcher's HTTP API. The zero HTTP uses a client with a timeout and
// no proxy.
type Client struct {
	// URL is the API's base URL, http://host:port, without /api.
	URL  string
	HTTP *http.Client
}

// defaultHTTP never goes through a proxy from the environment: the catcher is always the
// harness's own, and a proxy in between would only fail or see the mail.
var defaultHTTP = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{Proxy: nil},
}

// Messages lists every message the catcher holds, newest first.
func (c *Client) Messages(ctx context.Context) ([]Summary, error) {
	// limit=0 asks for all of them in one answer; paging by offset could repeat or miss a
	// message while others arrive.
	var ans struct {
		Messages []Summary `json:"messages"`
	}
	if err := c.get(ctx, "/api/v1/messages?limit=0", &ans); err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return ans.Messages, nil
}

// MessagesTo lists the messages addressed to addr (To, Cc or Bcc, compared without
// case), newest first. The catcher's own search matches substrings, so that
// bob@agents.test would also find mail to jimbob@agents.test; the filter here is exact.
func (c *Client) MessagesTo(ctx context.Context, addr string) ([]Summary, error) {
	all, err := c.Messages(ctx)
	if err != nil {
		return nil, err
	}
	mine := []Summary{}
	for _, s := range all {
		if s.AddressedTo(addr) {
			mine = append(mine, s)
		}
	}
	return mine, nil
}

// Message reads one message with its text. An id the catcher does not hold, or one that
// is not of its form, is ErrNotFound.
func (c *Client) Message(ctx context.Context, id string) (Message, error) {
	if !ValidID(id) {
		return Message{}, fmt.Errorf("get message %q: %w", id, ErrNotFound)
	}
	var m Message
	if err := c.get(ctx, "/api/v1/message/"+url.PathEscape(id), &m); err != nil {
		return Message{}, fmt.Errorf("get message %s: %w", id, err)
	}
	return m, nil
}

// get reads one JSON answer from the API.
func (c *Client) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimSuffix(c.URL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")

	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("catcher answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
