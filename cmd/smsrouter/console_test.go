package main

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"smsrouter/ingress/console"
)

// TestHashPassword: the command's hash checks against the password it read,
// and a short password is refused.
func TestHashPassword(t *testing.T) {
	out, errOut, code := runBin(t, context.Background(), strings.NewReader("a long enough password\n"), "console", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	h := strings.TrimSpace(out)
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("a long enough password")); err != nil {
		t.Errorf("hash %q does not match the password: %v", h, err)
	}
	if _, errOut, code := runBin(t, context.Background(), strings.NewReader("short\n"), "console", "hash-password"); code != exitUsage || !strings.Contains(errOut, "fewer than 8") {
		t.Errorf("short password: exit %d %s", code, errOut)
	}
}

// TestConsoleSettingsChecked: serve refuses a console it could not serve or
// that nobody could log in to, with the reason.
func TestConsoleSettingsChecked(t *testing.T) {
	h, _ := console.HashPassword("a password")
	good := []console.User{{Name: "alice", PasswordHash: h, Role: "admin"}}
	for _, tc := range []struct {
		name    string
		listen  string
		users   []console.User
		tokens  []string
		apiRole string
		want    string
	}{
		{"no listener", "", good, nil, "", "needs [http] listen"},
		{"no users", "127.0.0.1:0", nil, nil, "", "no [[console.users]]"},
		{"plain password", "127.0.0.1:0", []console.User{{Name: "alice", PasswordHash: "secret"}}, nil, "", "not a bcrypt hash"},
		{"bad role", "127.0.0.1:0", []console.User{{Name: "alice", PasswordHash: h, Role: "root"}}, nil, "", "want viewer or admin"},
		{"fine", "127.0.0.1:0", good, nil, "", ""},
		{"only an API token", "127.0.0.1:0", nil, []string{"a-token-of-16-chars"}, "", ""},
		{"API logins kept out, no users", "127.0.0.1:0", nil, []string{"a-token-of-16-chars"}, "none", "no [[console.users]]"},
		{"bad api_role", "127.0.0.1:0", good, nil, "root", "api_role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ConsoleConfig{Enabled: true, Users: tc.users, APIRole: tc.apiRole}.check(HTTPConfig{Listen: tc.listen, Tokens: tc.tokens})
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("check: %v; want %q", err, tc.want)
			}
		})
	}
	if err := (ConsoleConfig{}).check(HTTPConfig{}); err != nil {
		t.Errorf("a console not enabled is checked: %v", err)
	}
}
