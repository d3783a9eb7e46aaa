package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"smsrouter/ingress/httpapi"
)

// EvidenceConfig controls how serve and drain read Asterisk's archived call files
// (outgoing_done, written when a channel's archive = true) into the journal.
type EvidenceConfig struct {
	Every  duration `toml:"every"`  // how often serve reads outgoing_done; default 1m
	Notify bool     `toml:"notify"` // tell the sender when a call Expired or Failed
	// ResultWait is how long an archived call through an outcome context
	// ([dialplan] outcome) waits for its call result before it is judged by
	// the archive alone; default 2m.
	ResultWait duration `toml:"result_wait"`
}

// HTTPConfig is the HTTP send API (`POST /v1/messages`, Kannel's sendsms).
type HTTPConfig struct {
	Listen      string         `toml:"listen"`       // empty: no API; a bare ":port" binds 127.0.0.1
	Tokens      []string       `toml:"tokens"`       // bearer tokens, at least 16 characters
	Users       []httpapi.User `toml:"users"`        // name/password for sendsms and HTTP Basic
	SecretsFile string         `toml:"secrets_file"` // TOML file with more tokens/users, mode 0600
	Rate        float64        `toml:"rate"`         // requests per second per client address
	Burst       int            `toml:"burst"`
	MaxBody     int64          `toml:"max_body"` // bytes
	// HideText leaves messages' texts out of the API's answers (GET /v1/messages…).
	HideText bool `toml:"hide_text"`
	// The HTTP server, for the API and the metrics alike.
	MaxConns      int      `toml:"max_conns"`      // open connections; beyond it a new one gets 503 and is closed
	HeaderTimeout duration `toml:"header_timeout"` // deadline for a request's first bytes (line and headers)
}

// MetricsConfig is the Prometheus endpoint (/metrics and /healthz).
type MetricsConfig struct {
	Listen string `toml:"listen"` // empty: none; a bare ":port" binds 127.0.0.1
}

// secrets is the layout of HTTPConfig.SecretsFile: credentials kept out of the
// main config, which is often world-readable.
type secrets struct {
	Tokens []string       `toml:"tokens"`
	Users  []httpapi.User `toml:"users"`
}

// credentials merges the inline credentials with the secrets file. The file must
// not be readable by others: a token that anyone on the box can read is no token.
func (h HTTPConfig) credentials() ([]string, []httpapi.User, error) {
	tokens, users := append([]string(nil), h.Tokens...), append([]httpapi.User(nil), h.Users...)
	if h.SecretsFile == "" {
		return tokens, users, nil
	}
	st, err := os.Stat(h.SecretsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("http secrets_file: %w", err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, nil, fmt.Errorf("http secrets_file %s is readable by others (mode %v): chmod o-rwx it", h.SecretsFile, st.Mode().Perm())
	}
	var s secrets
	md, err := toml.DecodeFile(h.SecretsFile, &s)
	if err != nil {
		return nil, nil, fmt.Errorf("http secrets_file %s: %w", h.SecretsFile, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		return nil, nil, fmt.Errorf("http secrets_file %s: unknown keys: %v", h.SecretsFile, undec)
	}
	return append(tokens, s.Tokens...), append(users, s.Users...), nil
}

// localAddr makes a bare ":port" mean loopback: exposing the send API or the
// metrics to the network must be written out as an address.
func localAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if strings.TrimSpace(host) == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
