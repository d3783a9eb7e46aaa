package main

// "Where is my message?" through the real binary: the HTTP API's lookups after a
// delivery, a bounce and a deferral; Kannel's dlr-url callbacks received by a real
// HTTP server in the test, across a crash of serve; journal --follow, the time
// syntax and prune.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smsrouter/ingress/httpapi"
	"smsrouter/internal/testdb"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

const apiToken = "0123456789abcdef-secret"

// apiBed is a bed whose serve runs the HTTP API on addr.
func apiBed(t *testing.T, dsn, extra string, entries ...router.Entry) (*bed, string) {
	t.Helper()
	addr := closedPort(t)
	b := newBed(t, dsn, "", entries...)
	b.writeConfig(fmt.Sprintf("[http]\nlisten = %q\ntokens = [%q]\nusers = [{ name = \"kannel\", password = \"s3cret\" }]\nrate = 1000\nburst = 1000\n%s", addr, apiToken, extra))
	return b, "http://" + addr
}

// waitAPI waits until serve answers.
func waitAPI(t *testing.T, base string, p *serveProc) {
	t.Helper()
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/v1/openapi.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if i == 300 {
			t.Fatalf("the API never answered\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func apiCall(t *testing.T, method, u, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func submitJSON(t *testing.T, base, from, to, text string) string {
	t.Helper()
	code, h, body := apiCall(t, "POST", base+"/v1/messages", fmt.Sprintf(`{"from":%q,"to":%q,"text":%q}`, from, to, text))
	if code != 202 || h.Get("X-Message-Id") == "" {
		t.Fatalf("POST: %d %s", code, body)
	}
	return h.Get("X-Message-Id")
}

// messageView is GET /v1/messages/{id}, decoded loosely.
type messageView struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Final       bool   `json:"final"`
	From, To    string
	Text        *string `json:"text"`
	Received    string  `json:"received"`
	NextAttempt string  `json:"next_attempt"`
	LastError   string  `json:"last_error"`
	Tries       []struct {
		N                 int
		At, State, Reason string
	} `json:"tries"`
	Files   []string                               `json:"files"`
	Related []struct{ ID, Kind, State, To string } `json:"related"`
	Reports []struct {
		Kind, State, Outcome string
		Mask                 int
		Sent                 []int
	} `json:"reports"`
}

// waitState polls GET /v1/messages/{id} until the message is in state.
func waitState(t *testing.T, base, id, state string, p *serveProc) messageView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body := apiCall(t, "GET", base+"/v1/messages/"+id, "")
		var v messageView
		if code == 200 && json.Unmarshal([]byte(body), &v) == nil && v.State == state {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: %d %s\n%s", id, state, code, body, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWhereIsMyMessageOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		// 5558888's speech engine is missing: a sick dependency, so its message waits.
		entries := append([]router.Entry{{Number: "5558888", Letter: 'V', Extension: "PJSIP/8888"}}, stdEntries...)
		b, base := apiBed(t, dsn, "[voice]\nargv = [\"/nonexistent/tts\", \"{{.Text}}\"]\n", entries...)
		p := startServe(t, b)
		waitAPI(t, base, p)

		delivered := submitJSON(t, base, "5550001", "5551001", "Backup finished")
		bounced := submitJSON(t, base, "5550001", "5559999", "to nobody")
		deferred := submitJSON(t, base, "5550001", "5558888", "read me out")
		resp, err := http.Get(base + "/cgi-bin/sendsms?" + url.Values{"user": {"kannel"}, "pass": {"s3cret"}, "from": {"5550002"},
			"to": {"5551002"}, "charset": {"ISO-8859-1"}, "text": {"caf\xe9"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		kbody, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		kannel := resp.Header.Get("X-Message-Id")
		if resp.StatusCode != 202 || string(kbody) != "0: Accepted for delivery" || kannel == "" {
			t.Fatalf("sendsms: %d %q", resp.StatusCode, kbody)
		}

		v := waitState(t, base, delivered, "delivered", p)
		if !v.Final || v.Text == nil || *v.Text != "Backup finished" || len(v.Tries) != 1 || v.Tries[0].State != "delivered" || len(v.Files) < 1 {
			// The mttx file; the call file is placed after the journal write
			// (one call per phone, channels/sms) and named in the "call" detail.
			t.Fatalf("delivered view %+v", v)
		}
		if at, err := time.Parse(time.RFC3339, v.Received); err != nil || !strings.HasSuffix(v.Received, "Z") || time.Since(at) > time.Minute {
			t.Fatalf("received %q: not a time in the configured zone (UTC)", v.Received)
		}
		v = waitState(t, base, bounced, "bounced", p)
		if !v.Final || len(v.Related) != 1 || v.Related[0].Kind != "notice" || v.LastError == "" {
			t.Fatalf("bounced view %+v", v)
		}
		notice := v.Related[0].ID
		waitState(t, base, notice, "delivered", p)
		if v = waitState(t, base, bounced, "bounced", p); v.Related[0].State != "delivered" || v.Related[0].To != "5550001" {
			t.Fatalf("the notice about the bounce: %+v", v.Related)
		}
		v = waitState(t, base, deferred, "deferred", p)
		if v.Final || v.NextAttempt == "" || len(v.Tries) != 1 || v.Tries[0].State != "deferred" || !strings.Contains(v.Tries[0].Reason, "tts") {
			t.Fatalf("deferred view %+v", v)
		}
		if v = waitState(t, base, kannel, "delivered", p); *v.Text != "café" {
			t.Fatalf("Kannel's ISO-8859-1 text arrived as %q", *v.Text)
		}
		waitState(t, base, notice, "delivered", p)

		list := func(q string) ([]string, string) {
			t.Helper()
			code, _, body := apiCall(t, "GET", base+"/v1/messages?"+q, "")
			var page struct {
				Messages []struct{ ID string }
				Next     string `json:"next_cursor"`
			}
			if code != 200 || json.Unmarshal([]byte(body), &page) != nil {
				t.Fatalf("%s: %d %s", q, code, body)
			}
			var ids []string
			for _, m := range page.Messages {
				ids = append(ids, m.ID)
			}
			return ids, page.Next
		}
		if ids, _ := list("state=deferred"); !slices.Equal(ids, []string{deferred}) {
			t.Errorf("state=deferred: %v", ids)
		}
		if ids, _ := list("number=5559999&since=1h"); !slices.Equal(ids, []string{bounced}) {
			t.Errorf("number=5559999: %v", ids)
		}
		if ids, _ := list("until=1h"); len(ids) != 0 {
			t.Errorf("until=1h (an hour ago): %v", ids)
		}
		var all []string
		for cursor := ""; ; {
			ids, next := list("limit=2&cursor=" + cursor)
			all = append(all, ids...)
			if next == "" {
				break
			}
			cursor = next
		}
		want := []string{delivered, bounced, deferred, kannel, notice}
		slices.Sort(want)
		got := slices.Clone(all)
		slices.Sort(got)
		if !slices.Equal(got, want) || !slices.IsSortedFunc(all, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("paged list %v, want %v newest first", all, want)
		}
		// A refusal from the real server is JSON with a code.
		for _, c := range []struct{ path, code string }{{"/v1/messages/nope", "bad_id"}, {"/v1/messages?since=soon", "bad_time"}, {"/v2/", "not_found"}} {
			status, h, body := apiCall(t, "GET", base+c.path, "")
			var e map[string]string
			if json.Unmarshal([]byte(body), &e) != nil || e["code"] != c.code || h.Get("X-Error-Code") != c.code || status < 400 {
				t.Errorf("%s: %d %s", c.path, status, body)
			}
		}
		// journal show tells the same story on the command line.
		out, _, code := b.run(context.Background(), "journal", "show", "--config", b.conf, bounced)
		if code != 0 || !strings.Contains(out, "state:        bounced") || !strings.Contains(out, "related:      notice "+notice) ||
			!strings.Contains(out, "text:         to nobody") || !strings.Contains(out, "try 1:") {
			t.Errorf("journal show: %d\n%s", code, out)
		}
	})
}

// receiver is the application Kannel would call: a real HTTP server that keeps
// every callback, fails the first `failFirst`, and can run a hook on a call.
type receiver struct {
	mu        sync.Mutex
	calls     []url.Values
	statuses  []int
	failFirst int
	onCall    func(n int) // called with the 1-based call number, before answering
	srv       *httptest.Server
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.calls = append(r.calls, req.URL.Query())
		n := len(r.calls)
		hook := r.onCall
		status := 200
		if n <= r.failFirst {
			status = 500
		}
		r.statuses = append(r.statuses, status)
		r.mu.Unlock()
		if hook != nil {
			hook(n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// succeeded returns the types of the successful callbacks for id, in order.
func (r *receiver) succeeded(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for i, c := range r.calls {
		if c.Get("id") == id && r.statuses[i] == 200 {
			out = append(out, c.Get("type"))
		}
	}
	return out
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// kill ends serve at once, as a crash or kill -9 would.
func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func TestDeliveryReportsSurviveACrash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		entries := append([]router.Entry{{Number: "5558888", Letter: 'V', Extension: "PJSIP/8888"}}, stdEntries...)
		b, base := apiBed(t, dsn, "[voice]\nargv = [\"/nonexistent/tts\", \"{{.Text}}\"]\n[dlr]\npoll = \"50ms\"\nretry_min = \"300ms\"\nretry_max = \"300ms\"\n", entries...)
		rcv := newReceiver(t, 2)
		var (
			mu      sync.Mutex
			current *serveProc
			crashed = make(chan struct{})
		)
		// The second (failing) callback crashes serve before it is answered: the
		// dispatcher dies holding the request's lease, with nothing recorded.
		rcv.onCall = func(n int) {
			if n == 2 {
				mu.Lock()
				current.kill()
				mu.Unlock()
				close(crashed)
			}
		}
		p := startServe(t, b)
		mu.Lock()
		current = p
		mu.Unlock()
		waitAPI(t, base, p)

		dlrURL := rcv.srv.URL + "/dlr?id=%I&type=%d&from=%p&to=%P&reply=%A&smsc=%i&user=%n&time=%T&charset=%C"
		send := func(to, mask string) string {
			t.Helper()
			resp, err := http.Get(base + "/cgi-bin/sendsms?" + url.Values{"username": {"kannel"}, "password": {"s3cret"}, "from": {"5550001"},
				"to": {to}, "text": {"report it"}, "dlr-mask": {mask}, "dlr-url": {dlrURL}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 202 {
				t.Fatalf("sendsms to %s: %d", to, resp.StatusCode)
			}
			return resp.Header.Get("X-Message-Id")
		}
		first := send("5551001", "31") // its first two callbacks fail
		select {
		case <-crashed:
		case <-time.After(30 * time.Second):
			t.Fatalf("no second callback\n%s", p.out.String())
		}
		// serve is dead. Start it again: the request was stored before the
		// message was queued, and is neither lost nor sent twice.
		p2 := startServe(t, b)
		mu.Lock()
		current = p2
		mu.Unlock()
		waitAPI(t, base, p2)
		bounced := send("5559999", "3")
		deferred := send("5558888", "7")

		deadline := time.Now().Add(60 * time.Second)
		for !(slices.Equal(rcv.succeeded(first), []string{"8", "1"}) && slices.Equal(rcv.succeeded(bounced), []string{"2"}) &&
			slices.Equal(rcv.succeeded(deferred), []string{"4"})) {
			if time.Now().After(deadline) {
				t.Fatalf("callbacks: first %v bounced %v deferred %v\n%s", rcv.succeeded(first), rcv.succeeded(bounced), rcv.succeeded(deferred), p2.out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Nothing more comes, now or after another restart.
		n := rcv.count()
		time.Sleep(500 * time.Millisecond)
		p2.stop(t)
		p3 := startServe(t, b)
		waitAPI(t, base, p3)
		time.Sleep(time.Second)
		if got := rcv.count(); got != n {
			t.Fatalf("%d more callbacks after everything was sent", got-n)
		}
		if rcv.count() != 2+2+1+1 {
			t.Fatalf("%d callbacks, want 6 (2 failed, 8 and 1, 2, 4)", rcv.count())
		}

		rcv.mu.Lock()
		var final url.Values
		for i, c := range rcv.calls {
			if c.Get("id") == first && c.Get("type") == "1" && rcv.statuses[i] == 200 {
				final = c
			}
		}
		rcv.mu.Unlock()
		if final.Get("from") != "5550001" || final.Get("to") != "5551001" || final.Get("smsc") != "smsrouter" || final.Get("user") != "kannel" ||
			final.Get("charset") != "UTF-8" || !strings.HasPrefix(final.Get("reply"), "id:"+first+" ") || !strings.Contains(final.Get("reply"), "stat:DELIVRD") {
			t.Errorf("callback values %v", final)
		}
		// The API tells what became of each request.
		v := waitState(t, base, first, "delivered", p3)
		if len(v.Reports) != 1 || v.Reports[0].State != "done" || !reflect.DeepEqual(v.Reports[0].Sent, []int{1, 8}) && !reflect.DeepEqual(v.Reports[0].Sent, []int{8, 1}) {
			t.Errorf("reports of the first: %+v", v.Reports)
		}
		v = waitState(t, base, deferred, "deferred", p3)
		if len(v.Reports) != 1 || v.Reports[0].State != "pending" || v.Reports[0].Mask != 7 {
			t.Errorf("reports of the deferred: %+v", v.Reports)
		}
		if !strings.Contains(p2.out.String(), "took back requests leased by a process that died") {
			t.Errorf("the restarted serve did not take back the dead process's lease:\n%s", p2.out.String())
		}
	})
}

func TestDeliveryReportGivenUpIsRecorded(t *testing.T) {
	b, base := apiBed(t, "", "[dlr]\npoll = \"50ms\"\nretry_min = \"100ms\"\nretry_max = \"100ms\"\ngive_up = \"500ms\"\n", stdEntries...)
	rcv := newReceiver(t, 1<<30) // never answers 2xx
	p := startServe(t, b)
	waitAPI(t, base, p)
	code, h, body := apiCall(t, "POST", base+"/v1/messages",
		fmt.Sprintf(`{"from":"5550001","to":"5551001","text":"x","dlr_url":%q,"dlr_mask":1}`, rcv.srv.URL+"/?t=%d"))
	if code != 202 {
		t.Fatalf("%d %s", code, body)
	}
	id := h.Get("X-Message-Id")
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := waitState(t, base, id, "delivered", p)
		if len(v.Reports) == 1 && v.Reports[0].State == "gave_up" {
			if !strings.Contains(v.Reports[0].Outcome, "HTTP 500") || rcv.count() < 2 {
				t.Fatalf("outcome %q after %d calls", v.Reports[0].Outcome, rcv.count())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not given up: %+v", v.Reports)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := rcv.count()
	time.Sleep(400 * time.Millisecond)
	if rcv.count() != n {
		t.Fatal("called again after giving up")
	}
}

// TestJournalTimeFlags is the time syntax of --since/--until, read in the
// configured zone.
func TestJournalTimeFlags(t *testing.T) {
	warsaw, err := time.LoadLocation("Europe/Warsaw")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		since, until string
		from, to     time.Time
		err          string
	}{
		{"2d", "", now.Add(-48 * time.Hour), time.Time{}, ""},
		{"1w3d", "90m", now.Add(-240 * time.Hour), now.Add(-90 * time.Minute), ""},
		{"2026-12-01", "2026-12-02", time.Date(2026, 12, 1, 0, 0, 0, 0, warsaw), time.Date(2026, 12, 2, 0, 0, 0, 0, warsaw), ""},
		{"2026-12-01 14:00", "", time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC), time.Time{}, ""},
		{"2026-12-01T14:00:00Z", "", time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), time.Time{}, ""},
		{"", "2026-07-01 00:00", time.Time{}, time.Date(2026, 6, 30, 22, 0, 0, 0, time.UTC), ""},
		{"2h", "3h", time.Time{}, time.Time{}, "is not after --since"},
		{"yesterday", "", time.Time{}, time.Time{}, "--since"},
		{"", "2026-02-30", time.Time{}, time.Time{}, "--until"},
		{"90", "", time.Time{}, time.Time{}, "--since"},
	} {
		f, err := journalFilter(journalFlags{since: c.since, until: c.until, limit: 100}, now, warsaw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q..%q: %v, want error with %q", c.since, c.until, err, c.err)
			}
			continue
		}
		if err != nil || !f.Since.Equal(c.from) || !f.Until.Equal(c.to) {
			t.Errorf("%q..%q: %v..%v %v, want %v..%v", c.since, c.until, f.Since, f.Until, err, c.from, c.to)
		}
	}
}

// TestJournalListingsThroughTheBinary: times with their zone, the text excerpt
// and --no-text, and what a bad time says.
func TestJournalListingsThroughTheBinary(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	conf, err := os.ReadFile(b.conf)
	if err != nil {
		t.Fatal(err)
	}
	// +05:30: not a whole hour.
	writeFile(t, b.conf, []byte(strings.Replace(string(conf), `timezone = "UTC"`, `timezone = "Asia/Kolkata"`, 1)))
	recv := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
	id := fmt.Sprintf("%013d-%010x", recv.UnixMilli(), 1)
	if err := router.NewJournal(b.store).Put(context.Background(), "", []router.Record{{ID: id, Received: recv, OA: "5550001", DA: "5551001",
		Letter: "S", State: router.StateDelivered, Detail: "{}", Text: "The quick brown fox jumps over the lazy dog, twice over"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, _, code := b.run(ctx, "journal", "--config", b.conf, "--since", "2026-12-01 13:00", "--until", "2026-12-01 15:00")
	if code != 0 || !strings.Contains(out, "2026-12-01 14:00:00+05:30") || !strings.Contains(out, "The quick brown fox jumps over …") {
		t.Fatalf("journal: %d\n%s", code, out)
	}
	out, _, _ = b.run(ctx, "journal", "--config", b.conf, "--since", "2026-12-01 14:01")
	if !strings.Contains(out, "no messages match") {
		t.Fatalf("14:01 local is after the message:\n%s", out)
	}
	out, _, _ = b.run(ctx, "journal", "--config", b.conf, "--no-text")
	if strings.Contains(out, "quick") || strings.Contains(out, "TEXT") {
		t.Fatalf("--no-text shows text:\n%s", out)
	}
	out, _, _ = b.run(ctx, "journal", "--config", b.conf, "--json")
	var e journalEntry
	if json.Unmarshal([]byte(out), &e) != nil || e.Text == nil || e.Received.Format(time.RFC3339) != "2026-12-01T14:00:00+05:30" {
		t.Fatalf("--json: %s", out)
	}
	out, _, _ = b.run(ctx, "journal", "--config", b.conf, "--json", "--no-text")
	if strings.Contains(out, `"text"`) {
		t.Fatalf("--json --no-text: %s", out)
	}
	_, errOut, code := b.run(ctx, "journal", "--config", b.conf, "--since", "last week")
	if code != 2 || !strings.Contains(errOut, "--since") || !strings.Contains(errOut, "1w3d") {
		t.Fatalf("bad --since: %d %s", code, errOut)
	}
	out, _, code = b.run(ctx, "journal", "show", "--config", b.conf, "--no-text", id)
	if code != 0 || strings.Contains(out, "quick") || !strings.Contains(out, "received:     2026-12-01 14:00:00+05:30") {
		t.Fatalf("show --no-text: %d\n%s", code, out)
	}
}

// TestJournalFollow runs `journal --follow` as a real process and watches new
// and changed rows arrive, then ends it with SIGINT.
func TestJournalFollow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn, "", stdEntries...)
		j := router.NewJournal(b.store)
		ctx := context.Background()
		old := router.NewID(time.Now().Add(-time.Hour))
		older := router.NewID(time.Now().Add(-2 * time.Hour)) // written just now too, but left out by --limit 1
		if err := j.Put(ctx, "", []router.Record{
			{ID: old, Received: time.Now().Add(-time.Hour), OA: "5550001", DA: "5551001", State: router.StateDelivered, Detail: "{}", Text: "before"},
			{ID: older, Received: time.Now().Add(-2 * time.Hour), OA: "5550001", DA: "5551001", State: router.StateDelivered, Detail: "{}"},
		}); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binPath, "journal", "--follow", "--poll", "50ms", "--limit", "1", "--config", b.conf, "--number", "5551001")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		next := func() string {
			t.Helper()
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("follow ended\n%s", stderr.String())
				}
				return l
			case <-time.After(20 * time.Second):
				t.Fatalf("no line\n%s", stderr.String())
			}
			return ""
		}
		if h := next(); !strings.HasPrefix(h, "RECEIVED") {
			t.Fatalf("header %q", h)
		}
		if l := next(); !strings.Contains(l, old) {
			t.Fatalf("the existing row first: %q", l)
		}
		// A message arrives, is deferred, then delivered; one for another number
		// is filtered out.
		id := router.NewID(time.Now())
		other := router.NewID(time.Now())
		put := func(r router.Record) {
			r.Received, r.Updated, r.OA, r.Detail = time.Now(), time.Now(), "5550001", "{}"
			if err := j.Put(ctx, "", []router.Record{r}); err != nil {
				t.Fatal(err)
			}
		}
		put(router.Record{ID: other, DA: "5551002", State: router.StateDelivered})
		put(router.Record{ID: id, DA: "5551001", State: router.StateDeferred, Attempts: 1, LastError: "database down", Text: "hello"})
		if l := next(); !strings.Contains(l, id) || !strings.Contains(l, "deferred") || !strings.Contains(l, "hello") {
			t.Fatalf("new row: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
		put(router.Record{ID: id, DA: "5551001", State: router.StateDelivered, Attempts: 1})
		if l := next(); !strings.Contains(l, id) || !strings.Contains(l, "delivered") {
			t.Fatalf("changed row: %q", l)
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("follow after SIGINT: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("follow did not end on SIGINT")
		}
		for l := range lines {
			if strings.Contains(l, older) {
				t.Fatalf("a row the listing left out came back as new: %q", l)
			}
			if strings.Contains(l, other) {
				t.Fatalf("a row for another number: %q", l)
			}
			if strings.Contains(l, id) {
				t.Fatalf("printed twice: %q", l)
			}
		}
	})
}

func TestJournalPrune(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn, "", stdEntries...)
		j := router.NewJournal(b.store)
		ctx := context.Background()
		var recs []router.Record
		mk := func(ago time.Duration, n int, st router.State) string {
			at := time.Now().Add(-ago)
			id := fmt.Sprintf("%013d-%010x", at.UnixMilli(), n)
			recs = append(recs, router.Record{ID: id, Received: at, Updated: at, OA: "5550001", DA: "5551001", State: st, Detail: "{}", Try: 1})
			return id
		}
		for i := range 1200 { // more than two prune chunks
			mk(100*24*time.Hour, i, router.StateDelivered)
		}
		kept := mk(40*24*time.Hour, 5000, router.StateBounced)
		stuck := mk(200*24*time.Hour, 5001, router.StateDeferred)
		if err := j.Put(ctx, "", recs); err != nil {
			t.Fatal(err)
		}
		reqs := dlr.NewStore(b.store)
		if err := reqs.Add(ctx, dlr.Request{ID: recs[0].ID, Kind: "kannel", Target: "http://x/", Mask: 3}); err != nil {
			t.Fatal(err)
		}
		out, _, code := b.run(ctx, "journal", "prune", "--dry-run", "--config", b.conf)
		if code != 0 || !strings.HasPrefix(out, "would prune 1200 messages, 1200 tries, 1 delivery reports, 0 part links") {
			t.Fatalf("dry run: %d %s", code, out)
		}
		if _, errOut, code := b.run(ctx, "journal", "prune", "--older-than", "30m", "--config", b.conf); code != 2 || !strings.Contains(errOut, "shorter than 1h") {
			t.Fatalf("30m: %d %s", code, errOut)
		}
		if _, errOut, code := b.run(ctx, "journal", "prune", "--older-than", "soon", "--config", b.conf); code != 2 || !strings.Contains(errOut, "--older-than") {
			t.Fatalf("soon: %d %s", code, errOut)
		}
		out, _, code = b.run(ctx, "journal", "prune", "--config", b.conf)
		if code != 0 || !strings.HasPrefix(out, "pruned 1200 messages, 1200 tries, 1 delivery reports") || !strings.Contains(out, "(12w6d ago)") {
			t.Fatalf("prune: %d %s", code, out)
		}
		left, err := j.List(ctx, router.Filter{})
		if err != nil || len(left) != 2 {
			t.Fatalf("%d left, %v", len(left), err)
		}
		out, _, _ = b.run(ctx, "journal", "prune", "--older-than", "30d", "--config", b.conf)
		if !strings.HasPrefix(out, "pruned 1 messages") {
			t.Fatalf("--older-than 30d: %s", out)
		}
		if _, err := j.Get(ctx, kept); err == nil {
			t.Fatal("the 40-day-old message was kept")
		}
		if _, err := j.Get(ctx, stuck); err != nil {
			t.Fatalf("a message still being retried was pruned: %v", err)
		}
	})
}

// TestServeAppliesRetention: serve prunes at start and then every prune_every.
func TestServeAppliesRetention(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	b.writeConfig("[journal]\nretention = \"2d\"\nprune_every = \"100ms\"\n")
	j := router.NewJournal(b.store)
	ctx := context.Background()
	at := time.Now().Add(-3 * 24 * time.Hour)
	id := fmt.Sprintf("%013d-%010x", at.UnixMilli(), 7)
	if err := j.Put(ctx, "", []router.Record{{ID: id, Received: at, Updated: at, OA: "1", DA: "2", State: router.StateDelivered, Detail: "{}"}}); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, b)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := j.Get(ctx, id)
		if err != nil && strings.Contains(p.out.String(), "journal retention applied") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not pruned, or not logged (%v)\n%s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.writeConfig("[journal]\nretention = \"10m\"\n")
	if _, errOut, code := b.run(ctx, "journal", "prune", "--config", b.conf); code != 2 || !strings.Contains(errOut, "retention 10m0s is shorter") && !strings.Contains(errOut, "shorter than") {
		t.Fatalf("a retention under 1h: %d %s", code, errOut)
	}
}

// TestReportRequestFirstThenMessage: with the database down, a message asking
// for reports is refused and nothing is queued; once the request is stored,
// the file follows.
func TestReportRequestFirstThenMessage(t *testing.T) {
	inbox := t.TempDir()
	st, err := router.OpenStore(testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := dlr.NewStore(st)
	e := &env{stdout: io.Discard, stderr: io.Discard, log: newLogger(io.Discard, LogConfig{}, false, 0)}
	submit := submitWithReports(inbox, reqs, e)
	m := httpapi.Message{From: "5550001", To: "5551001", Text: "x", Report: &httpapi.ReportRequest{URL: "http://127.0.0.1:9/", Mask: 3, Info: map[string]string{}}}
	id, err := submit(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if sts, err := reqs.Of(context.Background(), id); err != nil || len(sts) != 1 {
		t.Fatalf("request of %s: %v %v", id, sts, err)
	}
	st.Close()
	if _, err := submit(context.Background(), m); err == nil {
		t.Fatal("queued with the database down")
	}
	if entries, _ := os.ReadDir(inbox); len(entries) != 1 {
		t.Fatalf("%d files queued, want only the first", len(entries))
	}
	// Without a report, the database is not needed at all.
	m.Report = nil
	if _, err := submit(context.Background(), m); err != nil {
		t.Fatalf("a message without reports needs no database: %v", err)
	}
}
