package mailer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
	"unicode"
)

// DefaultTimeout bounds one delivery when the context has no earlier deadline. The
// catcher answers in milliseconds; the margin is for a loaded CI machine.
const DefaultTimeout = 10 * time.Second

// maxAddress is the longest address SMTP can carry in a path (RFC 5321, 4.5.3.1.3).
const maxAddress = 254

// NormalizeAddress checks that s is one bare address (no display name, no angle
// brackets, ASCII only, at most 254 bytes) and returns it in lower case, the one
// spelling under which mocks look addresses up.
func NormalizeAddress(s string) (string, error) {
	if s == "" {
		return "", errors.New("email is required")
	}
	if len(s) > maxAddress {
		return "", fmt.Errorf("email is longer than %d bytes", maxAddress)
	}
	for _, r := range s {
		if r > unicode.MaxASCII || unicode.IsControl(r) || unicode.IsSpace(r) {
			return "", fmt.Errorf("email %q: only printable ASCII without spaces", s)
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("email %q: %w", s, err)
	}
	if a.Name != "" || a.Address != s {
		return "", fmt.Errorf("email %q: want a bare address", s)
	}
	local, domain, _ := strings.Cut(a.Address, "@")
	if local == "" || domain == "" {
		return "", fmt.Errorf("email %q: want local@domain", s)
	}
	return strings.ToLower(a.Address), nil
}

// Sender delivers mail to one SMTP server. The zero Timeout means DefaultTimeout.
type Sender struct {
	// Addr is the SMTP server's host:port.
	Addr string
	// From is the bare sender address, in the envelope and the From header.
	From    string
	Timeout time.Duration
}

// Send delivers one plain-text message to a single recipient. to must already be a
// normalized address (see NormalizeAddress); subject is the caller's own text, never a
// client's.
func (s *Sender) Send(ctx context.Context, to, subject, text string) error {
	if _, err := NormalizeAddress(to); err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	if strings.ContainsAny(subject, "\r\n") {
		return errors.New("send mail: subject spans lines")
	}
	if err := s.deliver(ctx, to, compose(s.From, to, subject, text)); err != nil {
		return fmt.Errorf("send mail to %s via %s: %w", to, s.Addr, err)
	}
	return nil
}

// deliver runs one SMTP session. net/smtp has no context, so the deadline goes on the
// connection and a cancelled context closes it.
func (s *Sender) deliver(ctx context.Context, to string, msg []byte) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(s.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose writes the header and the body. The body goes through SMTP's dot-writer,
// which turns bare line feeds into CRLF and escapes leading dots.
func compose(from, to, subject, text string) []byte {
	_, domain, _ := strings.Cut(from, "@")
	if domain == "" {
		domain = "mocks.invalid"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", rand.Text(), domain)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n")
	b.WriteString("\r\n")
	b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}
