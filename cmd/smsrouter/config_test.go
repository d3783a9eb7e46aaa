package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/ingress/httpapi"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

func TestExampleConfigLoadsAndMatchesDefaults(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spool != "/var/spool/asterisk" || cfg.SMSCNumber != "9001" || cfg.Queue.DefaultValidity.Duration != 24*time.Hour {
		t.Fatalf("unexpected values: %+v", cfg)
	}
	// The example documents the defaults: routing with it must equal routing with none.
	rc, err := withSpool(t, cfg).routerConfig()
	if err != nil {
		t.Fatal(err)
	}
	def, err := withSpool(t, defaultConfig()).routerConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc.Spool, def.Spool = "", ""
	def.DefaultValidity, def.RetryMin, def.RetryMax, def.ConcatTimeout, def.BatchSize = 24*time.Hour, 30*time.Second, 30*time.Minute, 10*time.Minute, 1024
	def.Parallel, def.DeliveryTimeout, def.Settle, def.Rescan = 8, 60*time.Second, 2*time.Second, 10*time.Second
	if rc.Notices != router.DefaultNotices {
		t.Fatalf("example notices differ from router.DefaultNotices:\n%+v\n%+v", rc.Notices, router.DefaultNotices)
	}
	def.Notices = rc.Notices
	if !reflect.DeepEqual(rc.Retry, router.DefaultRetryRules) || rc.Reports.Letters != router.DefaultReportLetters {
		t.Fatalf("example retry rules or report letters differ from the router's defaults:\n%+v %+v\n%+v", rc.Retry, rc.Reports, router.DefaultRetryRules)
	}
	def.Retry, def.Reports = rc.Retry, rc.Reports
	if !reflect.DeepEqual(rc, def) {
		t.Fatalf("example differs from the defaults:\nexample  %+v\ndefaults %+v", rc, def)
	}
	// The listeners' limits: what the example says is what a missing key gets.
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"[agi] max_conns", cfg.AGI.MaxConns, agi.DefaultMaxConns},
		{"[agi] max_handlers", cfg.AGI.MaxHandlers, agi.DefaultMaxHandlers},
		{"[agi] handler_wait", cfg.AGI.HandlerWait.Duration, agi.DefaultHandlerWait},
		{"[agi] env_timeout", cfg.AGI.EnvTimeout.Duration, agi.DefaultEnvTimeout},
		{"[http] max_conns", cfg.HTTP.MaxConns, httpapi.DefaultMaxConns},
		{"[http] header_timeout", cfg.HTTP.HeaderTimeout.Duration, httpapi.DefaultHeaderTimeout},
		{"[http] hide_text", cfg.HTTP.HideText, false},
		{"[journal] retention", mustRetention(t, cfg.Journal), router.DefaultRetention},
		{"[journal] prune_every", cfg.Journal.pruneEvery(), (JournalConfig{}).pruneEvery()},
		{"[dlr] poll", cfg.DLR.Poll.Duration, dlr.DefaultPoll},
		{"[dlr] timeout", cfg.DLR.Timeout.Duration, dlr.DefaultTimeout},
		{"[dlr] retry_min", cfg.DLR.RetryMin.Duration, dlr.DefaultRetryMin},
		{"[dlr] retry_max", cfg.DLR.RetryMax.Duration, dlr.DefaultRetryMax},
		{"[dlr] give_up", cfg.DLR.GiveUp.Duration, dlr.DefaultGiveUp},
		{"[dlr] parallel", cfg.DLR.Parallel, dlr.DefaultParallel},
	} {
		if c.got != c.want {
			t.Errorf("example %s = %v, default %v", c.key, c.got, c.want)
		}
	}
}

// TestExampleLinksAreReal uncomments the example's [[link]] and [[route]] keys
// (both kinds merged into one SMPP and one modem link) and checks that every
// documented key exists and the values given are accepted.
func TestExampleLinksAreReal(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "# [[link]]\n")
	if start < 0 {
		t.Fatal("no commented [[link]] in the example")
	}
	var common, smppKeys, modemKeys, route []string
	part := &common
	for _, line := range strings.Split(text[start:], "\n") {
		line = strings.TrimPrefix(line, "# ")
		switch {
		case strings.HasPrefix(line, "# SMPP only"):
			part = &smppKeys
			continue
		case strings.HasPrefix(line, "# Modem only"):
			part = &modemKeys
			continue
		case strings.HasPrefix(line, "[[route]]"):
			part = &route
			continue
		case line == "[[link]]" || !strings.Contains(line, " = ") || strings.HasPrefix(line, "#"):
			continue
		}
		*part = append(*part, line)
	}
	if len(common) < 10 || len(smppKeys) < 15 || len(modemKeys) < 8 || len(route) < 3 {
		t.Fatalf("keys found: %d common, %d smpp, %d modem, %d route", len(common), len(smppKeys), len(modemKeys), len(route))
	}
	drop := func(lines []string, keys ...string) []string {
		var out []string
		for _, l := range lines {
			k, _, _ := strings.Cut(l, " ")
			if !slices.Contains(keys, k) {
				out = append(out, l)
			}
		}
		return out
	}
	// One link of each kind; pattern and prefix are alternatives.
	body := "[numbers]\ncountry_code = \"48\"\n\n[[link]]\n" + strings.Join(common, "\n") + "\n" + strings.Join(smppKeys, "\n") +
		"\n\n[[link]]\n" + strings.Join(drop(common, "name", "kind", "number", "source", "text", "numbers", "inbound_to"), "\n") +
		"\nname = \"gsm\"\nkind = \"modem\"\nnumber = \"+48600000001\"\n" + strings.Join(modemKeys, "\n") +
		"\n\n[[route]]\n" + strings.Join(drop(route, "pattern"), "\n") + "\n"
	p := filepath.Join(t.TempDir(), "links.toml")
	os.WriteFile(p, []byte(body), 0o644)
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	cfg = withSpool(t, cfg)
	rc, err := cfg.routerConfig()
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(rc.Routes) != 1 || len(rc.Inbound) != 2 || rc.Inbound["+48221234567"].Link != "operator" {
		t.Fatalf("routes %+v inbound %+v", rc.Routes, rc.Inbound)
	}
}

func mustRetention(t *testing.T, j JournalConfig) time.Duration {
	r, err := j.retention()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func withSpool(t *testing.T, c Config) Config {
	c.Spool = t.TempDir()
	return c
}

func TestConfigRejectsUnknownKeysAndBadValues(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"spool = \"/x\"\nsmsc_numbr = \"1\"\n", "unknown keys: smsc_numbr"},
		{"[queue]\nretry_min = \"soon\"\n", "retry_min"},
		{"[queue]\nretry_min = \"-5s\"\n", "negative"},
		{"spool = \n", "config"},
	} {
		p := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(p, []byte(c.body), 0o644)
		_, err := loadConfig(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.body, err, c.want)
		}
	}
}

func TestFlagsAfterArgumentsAndHelp(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
	var out, errOut strings.Builder
	if code := run(ctx, []string{"migrate", "--db", dsn}, io.Discard, &errOut); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errOut.String())
	}
	// Flags may follow the positional arguments; "--" ends the flags.
	if code := run(ctx, []string{"number", "set", "5551001", "--db", dsn, "S", "PJSIP/1"}, io.Discard, &errOut); code != exitOK {
		t.Fatalf("number set with --db after the number: exit %d: %s", code, errOut.String())
	}
	code := run(ctx, []string{"lookup", "5551001", "--db", dsn, "--", "-5551002"}, &out, &errOut)
	if code != exitPartial || !strings.Contains(out.String(), "5551001\tS\tPJSIP/1") || !strings.Contains(out.String(), "-5551002\tinvalid") {
		t.Fatalf("lookup: exit %d, out %q, err %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(ctx, []string{"drain", "-h"}, &out, &out); code != exitOK || !strings.Contains(out.String(), "--quiet") {
		t.Fatalf("drain -h exits %d: %s", code, out.String())
	}
	if code := run(ctx, []string{"drain", "--bogus"}, io.Discard, io.Discard); code != exitUsage {
		t.Fatalf("a bad flag exits %d", code)
	}
}
