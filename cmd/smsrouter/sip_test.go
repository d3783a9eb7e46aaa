package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
)

func TestExampleSIPSectionMatchesDefaults(t *testing.T) {
	ex, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ex.sipSettings(); ok || err != nil {
		t.Fatalf("the example must leave T off: ok %v err %v", ok, err)
	}
	def := defaultConfig()
	ex.SIP.Username, def.SIP.Username = "smsrouter", "smsrouter"
	got, _, err := ex.sipSettings()
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := def.sipSettings()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("example [sip] differs from the defaults:\nexample  %+v\ndefaults %+v", got, want)
	}
	if want.AMI.Addr != "127.0.0.1:5038" || want.MarkerAge != 7*24*time.Hour || want.From != "{{.From}}" {
		t.Fatalf("defaults %+v", want)
	}
}

func TestSIPConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		sip    SIPConfig
		want   string // error substring; "" = wired
		secret string
	}{
		{name: "off", sip: SIPConfig{}},
		{name: "secret file", sip: SIPConfig{Username: "u", SecretFile: secretFile}, secret: "from-file"},
		{name: "inline secret", sip: SIPConfig{Username: "u", Secret: "s"}, secret: "s"},
		{name: "both", sip: SIPConfig{Username: "u", Secret: "s", SecretFile: secretFile}, want: "not both"},
		{name: "missing file", sip: SIPConfig{Username: "u", SecretFile: secretFile + ".nope"}, want: "secret_file"},
		{name: "secret without user", sip: SIPConfig{Secret: "s"}, want: "no username"},
		{name: "short markers", sip: SIPConfig{Username: "u", MarkerAge: duration{Duration: time.Hour}}, want: "marker_age"},
		{name: "bad from", sip: SIPConfig{Username: "u", From: "{{.Nope}}"}, want: "from template"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := withSpool(t, defaultConfig())
			cfg.SIP = c.sip
			chans := map[byte]channels.Channel{}
			err := addSIP(chans, cfg)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, wired := chans['T']
			if wired != (c.sip.Username != "") {
				t.Fatalf("T wired %v", wired)
			}
			if wired {
				sc, _, _ := cfg.sipSettings()
				if sc.AMI.Secret != c.secret {
					t.Fatalf("secret %q, want %q", sc.AMI.Secret, c.secret)
				}
				attachChannels(chans, nil, slog.New(slog.DiscardHandler))()
			}
		})
	}
}
