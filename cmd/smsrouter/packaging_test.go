package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitIsHardened keeps the unit's promises: the service may write to
// the spool and nowhere else, and it runs the serve command with the config
// path the example file and README name.
func TestSystemdUnitIsHardened(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "packaging", "smsrouter.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/spool/asterisk",
		"PrivateTmp": "yes", "ProtectHome": "yes", "User": "asterisk", "CapabilityBoundingSet": "",
		"ExecStart":  "/usr/local/bin/smsrouter serve --config /etc/asterisk/smsrouter.toml",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got := unit[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	cfg, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.workDir(), cfg.Spool) || cfg.Spool != "/var/spool/asterisk" {
		t.Errorf("the example's spool %s / work dir %s must be inside ReadWritePaths", cfg.Spool, cfg.workDir())
	}
	if cmd, _, err := newRoot(&env{}, nil).Find([]string{"serve"}); err != nil || cmd.Name() != "serve" {
		t.Errorf("no serve command: %v", err)
	}
	if !strings.Contains(unit["ExecStart"][0], systemConfig) {
		t.Errorf("the unit's config is not %s, where config discovery looks", systemConfig)
	}
}
