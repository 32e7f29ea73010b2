package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
)

// Files under the agent's HOME. The key never leaves its file except as signatures; the
// session sits next to it with the same owner-only mode.
const (
	DefaultKeyFile     = ".agentkeys/agent-device.key"
	DefaultSessionFile = ".agentkeys/session.json"
	DefaultPairingFile = ".agentkeys/pairing.json"
)

// ErrNoKey means the device key file does not exist yet.
var ErrNoKey = errors.New("no device key: run keygen first")

// Session is what pairing leaves the agent with. Email is the address the broker gave
// the agent at the claim; a session file written before agents had one leaves it empty
// (see OwnEmail).
type Session struct {
	JWT            string `json:"session_jwt"`
	Omni           string `json:"child_omni"`
	DerivationPath string `json:"derivation_path"`
	Email          string `json:"email,omitempty"`
}

// Pairing is the pending pairing request the agent polls for.
type Pairing struct {
	RequestID     string `json:"request_id"`
	PairingCode   string `json:"pairing_code"`
	DeviceKeyHash string `json:"device_key_hash"`
}

// CreateKey makes a new device key at path with mode 0600 in a 0700 directory. It never
// overwrites: an existing file is an error, because replacing a paired key would orphan
// the agent's identity.
func CreateKey(path string) (*evm.Key, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	k, err := evm.GenerateKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	if _, err := f.WriteString(k.Hex() + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("create key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	return k, nil
}

// LoadKey reads the device key at path. It refuses a symlink and a file that the group
// or others can read, as the upstream CLI does: a key another user could read is not a
// device key any more.
func LoadKey(path string) (*evm.Key, error) {
	raw, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load key %s: %w", path, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	k, err := evm.ParseKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	return k, nil
}

// SaveJSON writes v to path with mode 0600, replacing the file atomically.
func SaveJSON(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// LoadJSON reads an owner-only JSON file written by SaveJSON into v.
func LoadJSON(path string, v any) error {
	raw, err := readPrivate(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

func readPrivate(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symlink; refusing it", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %#o; want it readable by its owner only", path, perm)
	}
	return os.ReadFile(path)
}

// KeyPath is where the device key lives: AGENTKEYS_DEVICE_KEY_FILE, else
// ~/.agentkeys/agent-device.key.
func KeyPath() (string, error) { return pathFrom(EnvKeyFile, DefaultKeyFile) }

// SessionPath is where the session lives: AGENTKEYS_SESSION_FILE, else
// ~/.agentkeys/session.json.
func SessionPath() (string, error) { return pathFrom(EnvSessionFile, DefaultSessionFile) }

// PairingPath is where a pending pairing request is kept, beside the session.
func PairingPath() (string, error) {
	p, err := SessionPath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), filepath.Base(DefaultPairingFile)), nil
}

func pathFrom(env, def string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home: %w", err)
	}
	return filepath.Join(h, def), nil
}

// LoadSession reads the session that pairing left.
func LoadSession() (Session, error) {
	sp, err := SessionPath()
	if err != nil {
		return Session{}, err
	}
	var s Session
	if err := LoadJSON(sp, &s); err != nil {
		return Session{}, fmt.Errorf("%w: %v", ErrNotPaired, err)
	}
	return s, nil
}

// LoadClient is the paired agent as its sandbox holds it: the endpoints from the
// environment, the key from its file and the session beside it.
func LoadClient() (*Client, error) {
	kp, err := KeyPath()
	if err != nil {
		return nil, err
	}
	k, err := LoadKey(kp)
	if err != nil {
		return nil, err
	}
	e, err := EndpointsFromEnv()
	if err != nil {
		return nil, err
	}
	s, err := LoadSession()
	if err != nil {
		return nil, err
	}
	o, err := omni.ParseBare(omni.Normalize(s.Omni))
	if err != nil {
		return nil, fmt.Errorf("session file: child_omni: %w", err)
	}
	return &Client{Endpoints: e, Key: k, Session: s.JWT, Omni: o}, nil
}
