package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/router"
)

// TestServeRunsMetricsAndSendAPI starts a real serve with the send API and the
// metrics on one loopback port, queues a message over HTTP and watches it arrive
// in the journal and in the metrics.
func TestServeRunsMetricsAndSendAPI(t *testing.T) {
	addr := closedPort(t)
	b := newBed(t, "", "", router.Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"})
	secrets := filepath.Join(b.root, "secrets.toml")
	writeFile(t, secrets, []byte("tokens = [\"0123456789abcdef-secret\"]\n"))
	os.Chmod(secrets, 0o600)
	b.writeConfig("[http]\nlisten = \"" + addr + "\"\nsecrets_file = \"" + secrets + "\"\n[metrics]\nlisten = \"" + addr + "\"\n[evidence]\nevery = \"50ms\"\n")

	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", b.conf}, io.Discard, &out) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exit %d\n%s", code, out.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}()

	base := "http://" + addr
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ { // serve listens once the database is open
		req, _ := http.NewRequest("POST", base+"/v1/messages", strings.NewReader(`{"from":"5550001","to":"5551001","text":"over HTTP"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer 0123456789abcdef-secret")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("API never answered: %v", err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Message-Id")
	if resp.StatusCode != http.StatusAccepted || id == "" {
		t.Fatalf("POST: %d id %q", resp.StatusCode, id)
	}
	journal := router.NewJournal(b.store)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := journal.Get(context.Background(), id)
		if err == nil && rec.State == router.StateDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not delivered: %+v %v\n%s", id, rec, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The journal commit comes before publishing; the metrics hear of the fate
	// once the batch is finished.
	body := get(t, base+"/metrics", 200)
	for i := 0; i < 100 && !strings.Contains(body, `state="delivered"`); i++ {
		time.Sleep(20 * time.Millisecond)
		body = get(t, base+"/metrics", 200)
	}
	for _, want := range []string{
		`smsrouter_messages_total{letter="S",state="delivered"} 1`,
		`smsrouter_delivery_latency_seconds_count 1`,
		`smsrouter_queue_messages{where="deferred"} 0`,
		`smsrouter_queue_oldest_message_age_seconds 0`,
		`smsrouter_dependency_up{dependency="db"} 1`,
		`smsrouter_http_requests_total{endpoint="submit",result="ok"} 1`,
		`smsrouter_delivery_reports_pending 0`,
		`smsrouter_queue_oldest_age_seconds{where="held"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if body := get(t, base+"/healthz", 200); body != "ok\n" {
		t.Errorf("healthz %q", body)
	}
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestSecretsFileMustBePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.toml")
	writeFile(t, p, []byte("tokens = [\"0123456789abcdef\"]\n"))
	os.Chmod(p, 0o644)
	if _, _, err := (HTTPConfig{SecretsFile: p}).credentials(); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("err %v", err)
	}
	os.Chmod(p, 0o600)
	tokens, _, err := (HTTPConfig{SecretsFile: p, Tokens: []string{"inline-0123456789"}}).credentials()
	if err != nil || len(tokens) != 2 {
		t.Fatalf("%v %v", tokens, err)
	}
}

func TestLocalAddrDefaultsToLoopback(t *testing.T) {
	for in, want := range map[string]string{":8080": "127.0.0.1:8080", "0.0.0.0:1": "0.0.0.0:1", "[::1]:2": "[::1]:2"} {
		if got, err := localAddr(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	if _, err := localAddr("8080"); err == nil {
		t.Error("a bare port without colon was accepted")
	}
}

func TestInstrumentAGIReportsEveryRequest(t *testing.T) {
	type seen struct {
		script string
		err    error
	}
	var got []seen
	boom := errors.New("boom")
	hs := map[string]agi.Handler{
		"ok":   agi.HandlerFunc(func(context.Context, *agi.Session) error { return nil }),
		"fail": agi.HandlerFunc(func(context.Context, *agi.Session) error { return boom }),
	}
	wrapped := instrumentAGI(hs, func(script string, d time.Duration, err error) { got = append(got, seen{script, err}) })
	if err := wrapped["ok"].ServeAGI(context.Background(), &agi.Session{}); err != nil {
		t.Fatal(err)
	}
	if err := wrapped["fail"].ServeAGI(context.Background(), &agi.Session{}); !errors.Is(err, boom) {
		t.Fatalf("error not passed through: %v", err)
	}
	if len(got) != 2 || got[0] != (seen{"ok", nil}) || got[1].script != "fail" || !errors.Is(got[1].err, boom) {
		t.Fatalf("observed %+v", got)
	}
	if instrumentAGI(hs, nil)["ok"] == nil {
		t.Fatal("nil observe must keep the handlers")
	}
}
