package fastagi

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/router"
)

// agiEnvBlock is the environment block a real Asterisk 22 sends (fixture
// agi/3-msgctx.raw), for script and ${EXTEN}, with AGI() arguments.
func agiEnvBlock(script, exten string, args ...string) string {
	var b strings.Builder
	b.WriteString("agi_network: yes\nagi_network_script: " + script + "\n")
	b.WriteString("agi_request: agi://127.0.0.1:4573/" + script + "\n")
	b.WriteString("agi_channel: Message/ast_msg_queue\nagi_language: en\nagi_type: Message\n")
	b.WriteString("agi_uniqueid: 1795239737.94\nagi_version: 22.10.1\nagi_callerid: unknown\n")
	b.WriteString("agi_calleridname: unknown\nagi_callingpres: 67\nagi_callingani2: 0\nagi_callington: 0\n")
	b.WriteString("agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: messages\n")
	b.WriteString("agi_extension: " + exten + "\nagi_priority: 17\nagi_enhanced: 0.0\nagi_accountcode: \n")
	b.WriteString("agi_threadid: 140502018688704\n")
	for i, a := range args {
		b.WriteString("agi_arg_" + strconv.Itoa(i+1) + ": " + a + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// agiWords splits a command line as res_agi.c's parse_args does: space/tab
// separate, double quotes group, a backslash escapes the next character.
func agiWords(line string) []string {
	var words []string
	var cur []byte
	inWord, quoted, escaped := false, false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			cur, escaped, inWord = append(cur, c), false, true
		case c == '\\':
			escaped, inWord = true, true
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				words = append(words, string(cur))
			}
			cur, inWord = nil, false
		default:
			cur, inWord = append(cur, c), true
		}
	}
	if inWord {
		words = append(words, string(cur))
	}
	return words
}

// fakeChannel plays Asterisk on one FastAGI connection: it sends the
// environment block, answers GET VARIABLE from vars (raw overrides the reply
// line, newlines and all) and stores SET VARIABLE, writing every reply line
// separately, until the server closes. Then it sends the last HANGUP, as
// Asterisk does.
type fakeChannel struct {
	env          string
	vars         map[string]string
	raw          map[string]string // GET VARIABLE name -> reply text sent as is
	closeAfter   int               // >0: hang up (close) on receiving command n, unanswered
	hangupBefore int               // >0: an unprompted "HANGUP" line before the reply to command n
}

func (f *fakeChannel) run(t testing.TB, addr string) (cmds [][]string, err error) {
	t.Helper()
	if f.vars == nil {
		f.vars = map[string]string{}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, f.env); err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			io.WriteString(c, "HANGUP\n")
			return cmds, nil
		}
		if err != nil {
			return cmds, err
		}
		w := agiWords(strings.TrimSuffix(line, "\n"))
		cmds = append(cmds, w)
		if n == f.closeAfter {
			return cmds, nil
		}
		if n == f.hangupBefore {
			io.WriteString(c, "HANGUP\n")
		}
		var reply string
		switch {
		case len(w) == 3 && w[0] == "GET" && w[1] == "VARIABLE":
			if r, ok := f.raw[w[2]]; ok {
				reply = r
			} else if v, ok := f.vars[w[2]]; ok {
				reply = "200 result=1 (" + v + ")"
			} else {
				reply = "200 result=0"
			}
		case len(w) == 4 && w[0] == "SET" && w[1] == "VARIABLE":
			f.vars[w[2]] = w[3]
			reply = "200 result=1"
		default:
			reply = "510 Invalid or unknown command"
		}
		if _, err := io.WriteString(c, reply+"\n"); err != nil {
			return cmds, err
		}
	}
}

// agiRig serves the handlers on a loopback port.
type agiRig struct {
	h    *Service
	addr string
	morx string
	logs *agiLogs
}

func newAGIRig(t *testing.T, cfg Config) *agiRig {
	t.Helper()
	if cfg.Inbox == "" {
		cfg.Inbox = t.TempDir()
	}
	logs := &agiLogs{}
	cfg.Log = slog.New(logs)
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &agi.Server{Handlers: h.Handlers(), Logger: cfg.Log}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &agiRig{h: h, addr: l.Addr().String(), morx: cfg.Inbox, logs: logs}
}

// call runs one connection and fails the test if the client side failed.
func (ar *agiRig) call(t *testing.T, f *fakeChannel) [][]string {
	t.Helper()
	cmds, err := f.run(t, ar.addr)
	if err != nil {
		t.Fatalf("fake asterisk: %v (commands so far %q)", err, cmds)
	}
	return cmds
}

// agiLogs collects log lines.
type agiLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *agiLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *agiLogs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *agiLogs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *agiLogs) WithGroup(string) slog.Handler      { return l }

func (l *agiLogs) matching(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func TestAGIChaninfo(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		store, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		if _, err := store.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, e := range []router.Entry{{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}, {Number: "+4812345", Letter: 'T', Extension: "PJSIP/alice"}, {Number: "5551002", Letter: 'N', Extension: "PJSIP/1002"}} {
			if err := store.Set(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		ar := newAGIRig(t, Config{Directory: router.NewSQLDirectory(store)})
		for _, c := range []struct {
			name             string
			script, exten    string
			args             []string
			vars             map[string]string
			wantOpt, wantExt string
			wantGets         int
		}{
			{"exten", "chaninfo", "5551001", nil, nil, "S", "PJSIP/1001", 0},
			{"exten plus", "chaninfo", "+4812345", nil, nil, "T", "PJSIP/alice", 0},
			{"letter N", "chaninfo", "5551002", nil, nil, "N", "PJSIP/1002", 0},
			{"unknown", "chaninfo", "5559999", nil, nil, "U", "", 0},
			{"invalid exten", "chaninfo", "../../x", nil, nil, "U", "", 0},
			{"var query", "chaninfo?var=SENDER", "5559999", nil, map[string]string{"SENDER": "5551001"}, "S", "PJSIP/1001", 1},
			{"first argument names the variable", "chaninfo", "5559999", []string{"CALLED"}, map[string]string{"CALLED": "5551001"}, "S", "PJSIP/1001", 1},
			{"variable not set", "chaninfo?var=NOPE", "5551001", nil, nil, "U", "", 1},
			{"hostile variable", "chaninfo?var=X", "5551001", nil, map[string]string{"X": "1000\" x"}, "U", "", 1},
		} {
			t.Run(c.name, func(t *testing.T) {
				f := &fakeChannel{env: agiEnvBlock(c.script, c.exten, c.args...), vars: c.vars}
				// A value left from an earlier request on the channel must be overwritten.
				f.vars = mergeVars(f.vars, map[string]string{VarChanExt: "stale"})
				cmds := ar.call(t, f)
				if f.vars[VarChanOpt] != c.wantOpt || f.vars[VarChanExt] != c.wantExt {
					t.Errorf("MSG_CHAN_OPT=%q MSG_CHAN_EXT=%q, want %q %q", f.vars[VarChanOpt], f.vars[VarChanExt], c.wantOpt, c.wantExt)
				}
				gets := 0
				for _, w := range cmds {
					if w[0] == "GET" {
						gets++
					}
				}
				if gets != c.wantGets || len(cmds) != c.wantGets+2 {
					t.Errorf("commands %q: want %d GETs and 2 SETs", cmds, c.wantGets)
				}
			})
		}
		if n := len(ar.logs.matching("agi chaninfo")); n < 9 {
			t.Errorf("%d chaninfo log lines, want one per request", n)
		}
	})
}

func mergeVars(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestAGIChaninfoDirectoryDownIsE(t *testing.T) {
	ar := newAGIRig(t, Config{Directory: downDirectory{}, LookupCache: time.Minute})
	for range 2 { // twice: an unreachable answer is never cached
		f := &fakeChannel{env: agiEnvBlock("chaninfo", "5551001"), vars: map[string]string{VarChanExt: "stale"}}
		ar.call(t, f)
		if f.vars[VarChanOpt] != ChanError || f.vars[VarChanExt] != "" {
			t.Fatalf("vars %v, want MSG_CHAN_OPT=E and an empty MSG_CHAN_EXT", f.vars)
		}
	}
	if l := ar.logs.matching("agi chaninfo"); len(l) != 2 || !strings.HasPrefix(l[0], "WARN") {
		t.Errorf("log lines %q, want two warnings", l)
	}
}

// countingDirectory counts lookups and answers from a map.
type countingDirectory struct {
	mu      sync.Mutex
	n       int
	entries map[string]router.Entry
}

func (d *countingDirectory) Lookup(_ context.Context, number string) (router.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if e, ok := d.entries[number]; ok {
		return e, nil
	}
	return router.Entry{}, router.ErrUnknownNumber
}
func (d *countingDirectory) LookupMany(context.Context, []string) (map[string]router.Entry, error) {
	return nil, errors.New("not used")
}

func TestAGIChaninfoCacheExpires(t *testing.T) {
	dir := &countingDirectory{entries: map[string]router.Entry{"5551001": {Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}}}
	clock := &fakeClock{t: time.Now()}
	ar := newAGIRig(t, Config{Directory: dir, LookupCache: 2 * time.Second, Now: clock.now})
	ask := func() string {
		f := &fakeChannel{env: agiEnvBlock("chaninfo", "5551001")}
		ar.call(t, f)
		return f.vars[VarChanOpt]
	}
	ask()
	dir.mu.Lock()
	dir.entries["5551001"] = router.Entry{Number: "5551001", Letter: 'F', Extension: "PJSIP/1001"} // an admin's UPDATE
	dir.mu.Unlock()
	if got := ask(); got != "S" || dir.n != 1 {
		t.Fatalf("within the cache time: %q after %d lookups, want the cached S after 1", got, dir.n)
	}
	clock.advance(3 * time.Second)
	if got := ask(); got != "F" || dir.n != 2 {
		t.Fatalf("after the cache time: %q after %d lookups, want F after 2", got, dir.n)
	}
}

// msgctxBody is the fixture's body with line breaks added (CRLF from a SIP
// client, LF, and a blank line), which the old script flattened.
const msgctxBody = "Zażółć gęślą jaźń – SIP MESSAGE test 😀\r\nsecond line\n\nthird"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAGIPostSMSQueuesWhatTheRouterDelivers(t *testing.T) {
	rg := newRig(t, testdbSQLite(t))
	rg.set("5559999", 'S', "PJSIP/5559999")
	ar := newAGIRig(t, Config{Directory: rg.dir, Inbox: rg.r.Inbox()})
	// The values of the fixture's msgctx connection (agi/3-msgctx.raw).
	f := &fakeChannel{env: agiEnvBlock("postsms", "5559999"), vars: map[string]string{
		VarMsgFrom: `"Handset 1000" <sip:1000@127.0.0.1>`,
		VarBody:    b64(msgctxBody),
		VarReason:  "stale",
	}}
	ar.call(t, f)
	if f.vars[VarStatus] != StatusQueued || f.vars[VarReason] != "" || f.vars[VarFrom] != "1000" {
		t.Fatalf("vars %v, want QUEUED from 1000 with no reason", f.vars)
	}
	id := f.vars[VarID]
	name := channels.SpoolName("5559999", id, 0)
	data, err := os.ReadFile(filepath.Join(rg.r.Inbox(), name))
	if err != nil {
		t.Fatalf("queued file: %v", err)
	}
	m, err := smsq.Parse(data, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(msgctxBody, "\r\n", "\n")
	if m.OA != "1000" || m.DA != "5559999" || m.Text != want {
		t.Fatalf("queued oa=%q da=%q text=%q, want 1000 5559999 %q", m.OA, m.DA, m.Text, want)
	}
	rg.drain()
	rec, err := rg.journal.Get(context.Background(), id)
	if err != nil || rec.State != router.StateDelivered {
		t.Fatalf("journal for %s: %+v %v, want delivered", id, rec, err)
	}
	if l := ar.logs.matching("agi postsms"); len(l) != 1 || !strings.Contains(l[0], "id="+id) {
		t.Errorf("log lines %q, want one naming the id", l)
	}
}

func TestAGIPostSMSFormSMS(t *testing.T) {
	ar := newAGIRig(t, Config{Directory: downDirectory{}})
	f := &fakeChannel{env: agiEnvBlock("postsms", "s", "SMS"), vars: map[string]string{
		VarSMSOA: "+48600111222", VarSMSDA: "5551001", VarBody: b64("hi"),
	}}
	cmds := ar.call(t, f)
	if f.vars[VarStatus] != StatusQueued {
		t.Fatalf("vars %v", f.vars)
	}
	if cmds[0][2] != VarSMSOA || cmds[1][2] != VarSMSDA {
		t.Errorf("commands %q: want SMS_OA and SMS_DA read", cmds)
	}
	if _, err := os.Stat(filepath.Join(ar.morx, channels.SpoolName("5551001", f.vars[VarID], 0))); err != nil {
		t.Error(err)
	}
}

func TestAGIPostSMSRejectsHostileInput(t *testing.T) {
	ar := newAGIRig(t, Config{Directory: downDirectory{}, MaxBodyBytes: 1000})
	long := strings.Repeat("a", 1001)
	for _, c := range []struct {
		name   string
		exten  string
		args   []string
		vars   map[string]string
		raw    map[string]string
		reason string
	}{
		{"path recipient", "../../x", nil, map[string]string{VarMsgFrom: "sip:1000@h", VarBody: b64("x")}, nil, "recipient"},
		{"path sender", "5551001", nil, map[string]string{VarMsgFrom: `"x" <sip:../../x@h>`, VarBody: b64("x")}, nil, "sender"},
		{"newline in sender", "s", []string{"SMS"}, map[string]string{VarSMSDA: "5551001", VarBody: b64("x")},
			map[string]string{VarSMSOA: "200 result=1 (1000\nx)"}, "sender"},
		{"long sender", "5551001", nil, map[string]string{VarMsgFrom: strings.Repeat("1", 10000), VarBody: b64("x")}, nil, "sender"},
		{"no sender", "5551001", nil, map[string]string{VarBody: b64("x")}, nil, "sender is missing"},
		{"user name sender", "5551001", nil, map[string]string{VarMsgFrom: "<sip:alice@h>", VarBody: b64("x")}, nil, "sender"},
		{"no body", "5551001", nil, map[string]string{VarMsgFrom: "1000"}, nil, "empty"},
		{"not base64", "5551001", nil, map[string]string{VarMsgFrom: "1000", VarBody: "%%%"}, nil, "Base64"},
		{"invalid UTF-8", "5551001", nil, map[string]string{VarMsgFrom: "1000", VarBody: b64("a\xff\xfe")}, nil, "UTF-8"},
		{"NUL", "5551001", nil, map[string]string{VarMsgFrom: "1000", VarBody: b64("a\x00b")}, nil, "NUL"},
		{"too long", "5551001", nil, map[string]string{VarMsgFrom: "1000", VarBody: b64(long)}, nil, "longer than 1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeChannel{env: agiEnvBlock("postsms", c.exten, c.args...), vars: c.vars, raw: c.raw}
			ar.call(t, f)
			if f.vars[VarStatus] != StatusRejected || f.vars[VarID] != "" || !strings.Contains(f.vars[VarReason], c.reason) {
				t.Errorf("vars %q, want REJECTED with a reason containing %q", f.vars, c.reason)
			}
		})
	}
	if entries, _ := os.ReadDir(ar.morx); len(entries) != 0 {
		t.Errorf("morx holds %d files after rejections", len(entries))
	}
}

func TestAGIPostSMSSpoolFailureIsError(t *testing.T) {
	ar := newAGIRig(t, Config{Directory: downDirectory{}, Inbox: filepath.Join(t.TempDir(), "missing")})
	f := &fakeChannel{env: agiEnvBlock("postsms", "5551001"), vars: map[string]string{VarMsgFrom: "1000", VarBody: b64("x")}}
	ar.call(t, f)
	if f.vars[VarStatus] != StatusError || f.vars[VarReason] == "" {
		t.Fatalf("vars %v, want ERROR with a reason", f.vars)
	}
}

func TestAGIHangupMidConversation(t *testing.T) {
	ar := newAGIRig(t, Config{Directory: downDirectory{}})
	vars := func() map[string]string {
		return map[string]string{VarMsgFrom: "1000", VarBody: b64("hello")}
	}
	// The channel goes away before the body is read: nothing is queued.
	for _, n := range []int{1, 2} {
		f := &fakeChannel{env: agiEnvBlock("postsms", "5551001"), vars: vars(), closeAfter: n}
		ar.call(t, f)
	}
	// The channel goes away after the message was queued: it stays queued
	// (Asterisk already said 202 Accepted to the SIP sender).
	f := &fakeChannel{env: agiEnvBlock("postsms", "5551001"), vars: vars(), closeAfter: 3}
	ar.call(t, f)
	// chaninfo losing its channel between GET and SET.
	ar.call(t, &fakeChannel{env: agiEnvBlock("chaninfo?var=X", "5551001"), vars: map[string]string{"X": "5551001"}, closeAfter: 2})
	// An unprompted HANGUP before a reply shifts nothing: the rest still works.
	for _, n := range []int{1, 3, 4} {
		f := &fakeChannel{env: agiEnvBlock("postsms", "5551001"), vars: vars(), hangupBefore: n}
		ar.call(t, f)
		if f.vars[VarStatus] != StatusQueued || f.vars[VarFrom] != "1000" {
			t.Errorf("HANGUP before command %d: vars %v", n, f.vars)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(ar.logs.matching("aborted")) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := ar.logs.matching("aborted"); len(l) != 4 {
		t.Errorf("aborted log lines %q, want 4", l)
	}
	entries, _ := os.ReadDir(ar.morx)
	if len(entries) != 4 { // the one queued before its channel went, and the three with HANGUP lines
		t.Errorf("morx holds %d files, want 4", len(entries))
	}
	// The server is still up.
	f = &fakeChannel{env: agiEnvBlock("postsms", "5551001"), vars: vars()}
	ar.call(t, f)
	if f.vars[VarStatus] != StatusQueued {
		t.Fatalf("after hang-ups: %v", f.vars)
	}
}

func TestAGIRouteEndToEnd(t *testing.T) {
	rg := newRig(t, testdbSQLite(t))
	rg.set("5559999", 'S', "PJSIP/5559999")
	rg.set("1000", 'S', "PJSIP/1000")
	ar := newAGIRig(t, Config{Directory: rg.dir, Journal: rg.journal, Inbox: rg.r.Inbox(), RouteTimeout: 20 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rg.r.Serve(ctx, time.Hour) }() // inotify, not the rescan, must pick it up
	t.Cleanup(func() { cancel(); <-done })

	for _, c := range []struct {
		to, status, reason string
	}{
		{"5559999", "DELIVERED", ""},
		{"5550000", "BOUNCED", "unknown number"},
	} {
		f := &fakeChannel{env: agiEnvBlock("route", c.to), vars: map[string]string{
			VarMsgFrom: `"Handset 1000" <sip:1000@127.0.0.1>`, VarBody: b64("route me"),
		}}
		start := time.Now()
		ar.call(t, f)
		if f.vars[VarStatus] != c.status || f.vars[VarReason] != c.reason || f.vars[VarID] == "" {
			t.Errorf("to %s: vars %v, want %s %q", c.to, f.vars, c.status, c.reason)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("to %s: took %v", c.to, d)
		}
	}
}

func TestAGIRouteTimesOutPending(t *testing.T) {
	rg := newRig(t, testdbSQLite(t))
	ar := newAGIRig(t, Config{Directory: rg.dir, Journal: rg.journal, Inbox: rg.r.Inbox(), RouteTimeout: 150 * time.Millisecond})
	f := &fakeChannel{env: agiEnvBlock("route", "5559999"), vars: map[string]string{VarMsgFrom: "1000", VarBody: b64("x")}}
	start := time.Now()
	ar.call(t, f)
	if f.vars[VarStatus] != StatusPending || f.vars[VarID] == "" {
		t.Fatalf("vars %v, want PENDING with an id", f.vars)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("took %v, want about the route timeout", d)
	}
	// Nothing is lost: the router still has it.
	rg.drain()
	if st := rg.stateOf("1000", "5559999"); len(st) != 1 || st[0] != router.StateBounced {
		t.Errorf("states %v, want the message bounced (unknown number) after a drain", st)
	}
}

func TestAddressNumber(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`"Handset 1000" <sip:1000@127.0.0.1>`, "1000"},
		{`"a <b> @c:d" <sip:1000@127.0.0.1:5060;transport=udp>;tag=x`, "1000"},
		{"sip:1000@127.0.0.1", "1000"},
		{"sips:+48600111222@h", "+48600111222"},
		{"tel:+48600111222", "+48600111222"},
		{"pjsip:5559999@127.0.0.1", "5559999"},
		{"<sip:%2B4812@h>", "+4812"},
		{" 1000 ", "1000"},
		{"1000", "1000"},
		{"<sip:alice@h>", "alice"},
		{"", ""},
		{"<", "<"},
		{"sip:", ""},
	} {
		if got := AddressNumber(c.in); got != c.want {
			t.Errorf("AddressNumber(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzAddressNumber(f *testing.F) {
	for _, s := range []string{`"Handset 1000" <sip:1000@127.0.0.1>`, "tel:+1", "<sip:%2B4812@h>", "<<>>", "sip:%zz@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := AddressNumber(s)
		if len(n) > len(s) {
			t.Fatalf("AddressNumber(%q) = %q grew", s, n)
		}
		if router.ValidNumber(n) && strings.ContainsAny(n, "/\n\x00<>@:") {
			t.Fatalf("valid number %q with odd characters", n)
		}
	})
}
