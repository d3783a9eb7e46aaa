package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/asteriskconf/dialplan"
	"smsrouter/ingress/fastagi"
	"smsrouter/router"
)

func TestExampleAGISectionIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.AGI
	if a.Listen != "" || a.MaxConns != agi.DefaultMaxConns || a.RouteTimeout.Duration != fastagi.DefaultRouteTimeout || a.LookupCache.Duration != 0 {
		t.Fatalf("example [agi] %+v differs from the defaults", a)
	}
}

func TestDialplanCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"dialplan", "--smsc-exten", "9000,9002", "--agi", "127.0.0.1:4599"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want, err := dialplan.Generate(dialplan.Options{AGIAddr: "127.0.0.1:4599", SMSCNumber: "9001", SMSCExtens: []string{"9000", "9002"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("output differs from dialplan.Generate:\n%s", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"dialplan", "--manager"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "write = system,message\n") || !strings.Contains(out.String(), dialplan.SecretPlaceholder) {
		t.Errorf("--manager: exit %d, output:\n%s", code, out.String())
	}
	if code := run(context.Background(), []string{"dialplan", "--smsc-exten", "9000;x"}, &out, &errOut); code != exitUsage {
		t.Errorf("a hostile extension: exit %d, want %d", code, exitUsage)
	}
}

// agiCall plays Asterisk for one request: GETs answered from vars, SETs
// stored there, until the server closes.
func agiCall(t *testing.T, addr, env string, vars map[string]string) {
	t.Helper()
	var c net.Conn
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("FastAGI server not reachable: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, env)
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Fields(strings.TrimSpace(line))
		reply := "200 result=1"
		switch {
		case len(w) == 3 && w[0] == "GET":
			if v, ok := vars[w[2]]; ok {
				reply += " (" + v + ")"
			} else {
				reply = "200 result=0"
			}
		case len(w) >= 3 && w[0] == "SET":
			vars[w[2]] = strings.Trim(strings.Join(w[3:], " "), `"`)
		}
		io.WriteString(c, reply+"\n")
	}
}

func agiEnv(script, exten string) string {
	return "agi_network: yes\nagi_network_script: " + script + "\nagi_request: agi://127.0.0.1/" + script +
		"\nagi_channel: Message/ast_msg_queue\nagi_type: Message\nagi_uniqueid: 1.1\nagi_context: messages\nagi_extension: " + exten + "\nagi_priority: 3\n\n"
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeRunsFastAGI: serve with [agi] listen answers chaninfo and route,
// delivers what route queued, and stops cleanly on SIGTERM.
func TestServeRunsFastAGI(t *testing.T) {
	addr := freePort(t)
	b := newBed(t, "", fmt.Sprintf("[agi]\nlisten = %q\nroute_timeout = \"20s\"\n", addr),
		router.Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}, router.Entry{Number: "1000", Letter: 'S', Extension: "PJSIP/1000"})
	var errOut bytes.Buffer
	cmd := exec.Command(binPath, "serve", "--config", b.conf)
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()

	vars := map[string]string{}
	agiCall(t, addr, agiEnv("chaninfo", "5551001"), vars)
	if vars["MSG_CHAN_OPT"] != "S" || vars["MSG_CHAN_EXT"] != "PJSIP/1001" {
		t.Errorf("chaninfo: %v", vars)
	}
	vars = map[string]string{"MESSAGE_FROM": "<sip:1000@127.0.0.1>", "MSG_B64": base64.StdEncoding.EncodeToString([]byte("hi\nthere"))}
	agiCall(t, addr, agiEnv("route", "5551001"), vars)
	if vars["SMSROUTER_STATUS"] != "DELIVERED" || vars["SMSROUTER_ID"] == "" {
		t.Errorf("route: %v\n%s", vars, errOut.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM\n%s", errOut.String())
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("FastAGI still listening after serve ended")
	}
}

func TestAGICommandStandalone(t *testing.T) {
	addr := freePort(t)
	b := newBed(t, "", "", router.Entry{Number: "5551001", Letter: 'T', Extension: "PJSIP/alice"})
	var errOut bytes.Buffer
	cmd := exec.Command(binPath, "agi", "--listen", addr, "--config", b.conf)
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	vars := map[string]string{"N": "5551001"}
	agiCall(t, addr, agiEnv("chaninfo?var=N", "s"), vars)
	if vars["MSG_CHAN_OPT"] != "T" || vars["MSG_CHAN_EXT"] != "PJSIP/alice" {
		t.Errorf("chaninfo: %v", vars)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agi after SIGTERM: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "agi chaninfo") {
		t.Errorf("no request log line:\n%s", errOut.String())
	}
}
