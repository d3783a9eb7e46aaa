package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"smsrouter/ingress/console"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

var consoleShots = flag.String("console.shots", "", "folder for the console browser tests' screenshots (default: a new folder under the system's temp dir)")

// chromiumPath finds Debian's chromium; the browser tests are skipped, and say
// so, only when it is absent.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium): the console's browser tests need it")
	return ""
}

// browser starts a fresh headless Chromium (its own profile folder) and
// returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shots is the folder the screenshots go to, made once per test run.
func shots(t *testing.T) string {
	t.Helper()
	dir := *consoleShots
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "smsrouter-console-shots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// consoleUsers are the test's users: an admin and a viewer, with cheap hashes.
func consoleUsers(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, u := range []struct{ name, pass, role string }{{"alice", "alice-secret", "admin"}, {"victor", "victor-secret", "viewer"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "[[console.users]]\nname = %q\npassword_hash = %q\nrole = %q\n", u.name, h, u.role)
	}
	return b.String()
}

// startConsoleServe runs the real serve (its in-process entry point, as
// TestServeRunsMetricsAndSendAPI does) with the console on, and returns the
// console's base URL once it answers.
func startConsoleServe(t *testing.T, dsn string, seed func(*bed), entries ...router.Entry) (*bed, string) {
	t.Helper()
	addr := closedPort(t)
	extra := "[http]\nlisten = \"" + addr + "\"\ntokens = [\"0123456789abcdef-secret\"]\n[console]\nenabled = true\nhide_text_from_viewers = true\n" +
		consoleUsers(t) + "[queue]\nrescan = \"200ms\"\n"
	b := newBed(t, dsn, extra, entries...)
	if seed != nil {
		seed(b)
	}
	out := serveInProcess(t, b.conf)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(out.String(), 4000))
		}
	})
	base := "http://" + addr
	for i := 0; ; i++ {
		conn, err := dialTCP(addr)
		if err == nil {
			conn.Close()
			// The console's handler exists once the database is open.
			if body := getNoRedirect(base + "/ui/login"); strings.Contains(body, "Log in") {
				break
			}
		}
		if i > 200 {
			t.Fatalf("serve never answered on %s\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b, base
}

// getNoRedirect reads a page without following redirects; "" on any failure.
func getNoRedirect(url string) string {
	c := &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConsoleInBrowser drives the console in a real headless Chromium against
// a real serve, on SQLite and on MariaDB: log in, send a message and watch it
// be delivered (its mttx and call file in the spool), find it by number, see a
// fax's page, change a number's letter and see the next message go the new
// way, a viewer who cannot edit or read texts, a forged form refused, and a
// logged-out browser that sees nothing but the login.
func TestConsoleInBrowser(t *testing.T) {
	chromiumPath(t)
	testdb.Each(t, func(t *testing.T, dsn string) {
		// Two messages deferred for an hour (as a failed try leaves them), for
		// the retry and drop buttons.
		now := time.Now()
		deferredID := []string{fmt.Sprintf("%013d-%010x", now.Add(-5*time.Minute).UnixMilli(), 1), fmt.Sprintf("%013d-%010x", now.Add(-4*time.Minute).UnixMilli(), 2)}
		seed := func(b *bed) {
			var recs []router.Record
			dir := filepath.Join(b.work, "deferred")
			os.MkdirAll(dir, 0o770)
			for _, id := range deferredID {
				at, _ := strconv.ParseInt(id[:13], 10, 64)
				recs = append(recs, router.Record{ID: id, Received: time.UnixMilli(at), Updated: now.Add(-time.Minute), OA: "5550001", DA: "5551001", Letter: "S",
					State: router.StateDeferred, Attempts: 1, NextAttempt: now.Add(time.Hour), LastError: "the directory did not answer", Detail: "{}", Text: "waiting " + id[len(id)-1:]})
				body := "oa=5550001\nda=5551001\nud=waiting " + id[len(id)-1:] + "\nscts=" + now.UTC().Format("2006-01-02T15:04:05") + "\n"
				writeFile(t, filepath.Join(dir, fmt.Sprintf("%013d.%s.1", now.Add(time.Hour).UnixMilli(), id)), []byte(body))
			}
			if err := router.NewJournal(b.store).Put(context.Background(), "", recs); err != nil {
				t.Fatal(err)
			}
		}
		b, base := startConsoleServe(t, dsn, seed,
			router.Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"},
			router.Entry{Number: "5552000", Letter: 'F', Extension: "PJSIP/fax2000"},
			router.Entry{Number: "5553000", Letter: 'S', Extension: "PJSIP/3000"},
			router.Entry{Number: "5554000", Letter: 'V', Extension: "PJSIP/4000"},
			// A row the router cannot serve: T without [sip]; doctor says so.
			router.Entry{Number: "5555000", Letter: 'T', Extension: "PJSIP/5000"},
		)
		dir := filepath.Join(shots(t), filepath.Base(t.Name()))
		os.MkdirAll(dir, 0o755)
		t.Logf("screenshots in %s", dir)
		ctx := browser(t)
		step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := chromedp.Do(sctx, steps...); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		text := func(sel string) string {
			t.Helper()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			v, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
			if err != nil {
				t.Fatalf("text of %s: %v", sel, err)
			}
			return v
		}
		location := func() string {
			t.Helper()
			v, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		status := func(js string) int {
			t.Helper()
			v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("evaluate: %v", err)
			}
			return v
		}
		css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
		// send queues a message with the send form and waits for its page to
		// say delivered.
		send := func(to, msg string) string {
			t.Helper()
			step("send to "+to, chromedp.Navigate(base+"/ui/send"),
				chromedp.SendKeys(css(`input[name=from]`), "5550001"), chromedp.SendKeys(css(`input[name=to]`), to),
				chromedp.SendKeys(css(`textarea[name=text]`), msg))
			id := submitSend(t, ctx, text)
			waitDelivered(t, ctx, base, id, text)
			return id
		}

		// Logged out: every page leads to the login, and shows nothing.
		step("logged-out traffic", chromedp.Navigate(base+"/ui/traffic"))
		if loc, body := location(), text("body"); !strings.Contains(loc, "/ui/login") || strings.Contains(body, "Traffic") {
			t.Fatalf("logged out, /ui/traffic showed %s: %q", loc, body)
		}
		screenshot(t, ctx, dir, "01-login")

		login := func(user, pass string) {
			t.Helper()
			step("log in as "+user, chromedp.Navigate(base+"/ui/login"),
				chromedp.SendKeys(css(`input[name=user]`), user), chromedp.SendKeys(css(`input[name=password]`), pass),
				chromedp.Submit(css(`input[name=password]`)), chromedp.WaitVisible(css(`table.counts`)))
			if loc := location(); !strings.HasSuffix(loc, "/ui/traffic") {
				t.Fatalf("after login at %s", loc)
			}
		}
		login("alice", "alice-secret")

		// Send, with the counter's numbers as the S channel splits the text.
		msg := "Grüße aus dem Browser: {braces} cost two septets each"
		want := console.CountText(msg, 10)
		step("send page", chromedp.Navigate(base+"/ui/send"),
			chromedp.SendKeys(css(`input[name=from]`), "5550001"), chromedp.SendKeys(css(`input[name=to]`), "5551001"),
			chromedp.SendKeys(css(`textarea[name=text]`), msg))
		wantCounter := fmt.Sprintf("%d characters, %s, %d septets, %d SMS", want.Chars, want.Coding, want.Units, want.Parts)
		if counter := text(`#counter`); !strings.HasPrefix(counter, wantCounter) {
			t.Errorf("counter %q; want it to start %q", counter, wantCounter)
		}
		screenshot(t, ctx, dir, "02-send")
		id := submitSend(t, ctx, text)
		waitDelivered(t, ctx, base, id, text)
		if !spoolHas(t, b.mttx, id) || !spoolHas(t, b.outgoing, id) {
			t.Errorf("message %s delivered, but its mttx or call file is missing", id)
		}
		if story := text("main"); !strings.Contains(story, msg) || !strings.Contains(story, "try 1: delivered") {
			t.Errorf("message page lacks the text or the try:\n%s", story)
		}
		screenshot(t, ctx, dir, "03-message")

		// A fax: its page as an image, drawn from the TIFF.
		faxID := send("5552000", "A fax from the console.\nSecond line.")
		step("fax image", chromedp.WaitVisible(css(`img.fax`)))
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		width, err := chromedp.Run(pctx, chromedp.Poll[int](`(() => { const i = document.querySelector("img.fax"); return i.complete && i.naturalWidth })()`))
		cancel()
		if err != nil || width != 1728 {
			t.Errorf("fax page image is %d pixels wide (%v); want 1728 (a fax line)", width, err)
		}
		screenshot(t, ctx, dir, "05-fax-message")

		// Find it by number with the traffic form.
		step("filter by number", chromedp.Navigate(base+"/ui/traffic"), chromedp.SendKeys(css(`form.filter input[name=number]`), "5551001"),
			chromedp.Submit(css(`form.filter input[name=number]`)))
		// The form's GET navigates; ask for the location until it has arrived.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err == nil && strings.Contains(loc, "number=5551001") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the filter form did not lead to ?number=5551001: at %s, %v", loc, err)
			}
		}
		step("filtered list", chromedp.WaitVisible(css(`a[href="/ui/messages/`+id+`"]`)))
		// The fax to another number is left out.
		if n := status(`document.querySelectorAll('table.messages a[href="/ui/messages/` + faxID + `"]').length`); n != 0 {
			t.Errorf("the list filtered by 5551001 shows the fax to 5552000")
		}
		screenshot(t, ctx, dir, "04-traffic-by-number")

		// A voice message: its WAV plays in the page.
		voiceID := send("5554000", "Hello from the console")
		step("voice", chromedp.WaitVisible(css(`audio`)))
		if st := status(`fetch(document.querySelector("audio").src, {credentials: "same-origin"}).then(r => r.ok && r.headers.get("Content-Type") === "audio/wav" ? r.arrayBuffer().then(b => b.byteLength > 1000 ? 200 : 0) : r.status)`); st != 200 {
			t.Errorf("message %s: the voice file answered %d", voiceID, st)
		}
		screenshot(t, ctx, dir, "05b-voice-message")

		// Change 5553000's letter to F in the directory; the next message is a fax.
		step("directory change", chromedp.Navigate(base+"/ui/directory"),
			chromedp.SendKeys(css(`form.numberform input[name=number]`), "5553000"),
			chromedp.SetValue(css(`form.numberform select[name=letter]`), "F"),
			chromedp.SendKeys(css(`form.numberform input[name=extension]`), "PJSIP/fax3000"),
			chromedp.Submit(css(`form.numberform input[name=number]`)), chromedp.WaitVisible(css(`p.flash`)))
		if letter := text(`tr[data-number="5553000"] td.letter`); letter != "F" {
			t.Errorf("directory row of 5553000 shows letter %q after the change", letter)
		}
		screenshot(t, ctx, dir, "06-directory")
		step("directory lint", chromedp.Navigate(base+"/ui/directory"), chromedp.WaitVisible(css(`tr[data-number="5555000"] .lint`)))
		if lint := text(`tr[data-number="5555000"] .lint`); !strings.Contains(lint, "letter T, but [sip] is not configured") {
			t.Errorf("the finding beside 5555000 says %q", lint)
		}
		if n := status(`document.querySelectorAll("main > .lint").length`); n != 0 {
			t.Errorf("%d findings of no row shown; want none (the only one is beside its row)", n)
		}
		screenshot(t, ctx, dir, "06b-directory-lint")
		nextID := send("5553000", "now by fax")
		if rec, err := router.NewJournal(b.store).Get(context.Background(), nextID); err != nil || rec.Letter != "F" {
			t.Errorf("after the change, message %s went by letter %q (%v); want F", nextID, rec.Letter, err)
		}
		// The change is in the admin action log with its user.
		var who string
		if err := b.store.DB.QueryRow("SELECT user FROM smsrouter_admin_action WHERE action = 'number set' AND target = '5553000'").Scan(&who); err != nil || who != "alice" {
			t.Errorf("admin action of the change: user %q, %v", who, err)
		}

		// Retry one deferred message: it is delivered at once. Drop the
		// other, telling the sender: dropped, with the reason and the user.
		step("deferred message", chromedp.Navigate(base+"/ui/traffic?state=deferred"), chromedp.WaitVisible(css(`a[href="/ui/messages/`+deferredID[0]+`"]`)))
		screenshot(t, ctx, dir, "07a-traffic-deferred")
		step("retry", chromedp.Navigate(base+"/ui/messages/"+deferredID[0]), chromedp.WaitVisible(css(`form[action$="/retry"] button`)))
		screenshot(t, ctx, dir, "07b-deferred-message")
		step("retry click", chromedp.Click(css(`form[action$="/retry"] button`)), chromedp.WaitVisible(css(`p.flash`)))
		waitDelivered(t, ctx, base, deferredID[0], text)
		step("drop", chromedp.Navigate(base+"/ui/messages/"+deferredID[1]), chromedp.SendKeys(css(`input[name=reason]`), "spam"),
			chromedp.Click(css(`input[name=notify]`)), chromedp.Click(css(`form[action$="/drop"] button`)), chromedp.WaitVisible(css(`p.flash`)))
		if st := text(`#state`); st != "dropped" {
			t.Errorf("after drop, the message page says %q", st)
		}
		if rec, err := router.NewJournal(b.store).Get(context.Background(), deferredID[1]); err != nil || rec.State != router.StateDropped || rec.LastError != "spam" || !strings.Contains(rec.Detail, "notice_id") {
			t.Errorf("dropped message in the journal: %+v %v", rec, err)
		}
		for _, a := range []string{"retry", "drop"} {
			var who string
			if err := b.store.DB.QueryRow("SELECT user FROM smsrouter_admin_action WHERE action = ?", a).Scan(&who); err != nil || who != "alice" {
				t.Errorf("admin action %s: user %q, %v", a, who, err)
			}
		}

		// Health: the doctor's checks.
		step("health", chromedp.Navigate(base+"/ui/health"), chromedp.WaitVisible(css(`table.health`)))
		health := text(`table.health`)
		for _, want := range []string{"schema", "free space", "directory"} {
			if !strings.Contains(health, want) {
				t.Errorf("health page lacks %q:\n%s", want, health)
			}
		}
		screenshot(t, ctx, dir, "07-health")
		step("traffic", chromedp.Navigate(base+"/ui/traffic"), chromedp.WaitVisible(css(`table.messages`)))
		screenshot(t, ctx, dir, "08-traffic")
		// Live: a message queued over the HTTP API appears on the open page,
		// which is not reloaded (the marker set on it survives).
		status(`window.notReloaded = 1`)
		apiID := postAPI(t, base, "5550002", "5551001", "over the API while the page is open")
		step("live update", chromedp.WaitVisible(css(`a[href="/ui/messages/`+apiID+`"]`)))
		if status(`window.notReloaded || 0`) != 1 {
			t.Error("the traffic page was reloaded rather than updated")
		}

		// A forged form (no CSRF token), sent with the admin's cookie: refused.
		if st := status(`fetch("/ui/directory", {method: "POST", credentials: "same-origin",
			body: new URLSearchParams({number: "5551001", letter: "N", extension: ""})}).then(r => r.status)`); st != 403 {
			t.Errorf("a POST without the CSRF token got %d; want 403", st)
		}
		if e, err := router.NewSQLDirectory(b.store).Lookup(context.Background(), "5551001"); err != nil || e.Letter != 'S' {
			t.Errorf("after the forged form, 5551001 is %+v %v", e, err)
		}

		// The viewer: no forms, no texts, and a POST with a valid token is refused.
		step("log out", chromedp.Click(css(`form.who button`)), chromedp.WaitVisible(css(`input[name=user]`)))
		login("victor", "victor-secret")
		step("viewer directory", chromedp.Navigate(base+"/ui/directory"), chromedp.WaitVisible(css(`table.directory`)))
		if n := status(`document.querySelectorAll("form.numberform, form[action='/ui/directory/delete']").length`); n != 0 {
			t.Errorf("the viewer sees %d edit forms", n)
		}
		screenshot(t, ctx, dir, "09-viewer-directory")
		if st := status(`fetch("/ui/directory", {method: "POST", credentials: "same-origin",
			body: new URLSearchParams({csrf: document.querySelector("form.who input[name=csrf]").value, number: "5551001", letter: "N", extension: ""})}).then(r => r.status)`); st != 403 {
			t.Errorf("a viewer's directory POST got %d; want 403", st)
		}
		step("viewer message", chromedp.Navigate(base+"/ui/messages/"+id))
		if body := text("main"); strings.Contains(body, msg) || !strings.Contains(body, "hidden from viewers") {
			t.Errorf("the viewer's message page shows the text (hide_text_from_viewers):\n%s", body)
		}
		screenshot(t, ctx, dir, "10-viewer-message")
		// Nor the fax, which is the text as an image.
		step("viewer fax", chromedp.Navigate(base+"/ui/messages/"+faxID))
		if n := status(`document.querySelectorAll("img.fax").length`); n != 0 {
			t.Errorf("the viewer sees %d fax page images with hide_text_from_viewers", n)
		}
		if st := status(`fetch("/ui/messages/` + faxID + `/fax/0/1.png", {credentials: "same-origin"}).then(r => r.status)`); st != 403 {
			t.Errorf("the viewer's fetch of a fax page got %d; want 403", st)
		}

		// Logged out again: the message page leads to the login, without the text.
		step("log out", chromedp.Click(css(`form.who button`)), chromedp.WaitVisible(css(`input[name=user]`)))
		step("logged-out message", chromedp.Navigate(base+"/ui/messages/"+id))
		if loc, body := location(), text("body"); !strings.Contains(loc, "/ui/login") || strings.Contains(body, "5551001") {
			t.Errorf("logged out, the message page showed %s: %q", loc, body)
		}

		// A phone-sized screen.
		login("alice", "alice-secret")
		step("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/ui/traffic"), chromedp.WaitVisible(css(`table.messages`)))
		screenshot(t, ctx, dir, "11-phone-traffic")
		step("phone message", chromedp.Navigate(base+"/ui/messages/"+faxID), chromedp.WaitVisible(css(`img.fax`)))
		screenshot(t, ctx, dir, "12-phone-fax")
	})
}

// submitSend submits the send form and returns the queued message's id.
func submitSend(t *testing.T, ctx context.Context, text func(string) string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Submit(chromedp.CSS(`textarea[name=text]`)), chromedp.WaitVisible(chromedp.CSS(`#sent`))); err != nil {
		t.Fatalf("submit send: %v", err)
	}
	id := text(`#sent`)
	if len(id) < 20 {
		t.Fatalf("send answered id %q", id)
	}
	return id
}

// waitDelivered opens the message's page until it says delivered.
func waitDelivered(t *testing.T, ctx context.Context, base, id string, text func(string) string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/messages/"+id)); err != nil {
			t.Fatalf("message page %s: %v", id, err)
		}
		state := text(`#state`)
		if state == "delivered" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %q, not delivered", id, state)
		}
	}
}

// postAPI queues a message with the HTTP API and returns its id.
func postAPI(t *testing.T, base, from, to, text string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/messages", strings.NewReader(fmt.Sprintf(`{"from":%q,"to":%q,"text":%q}`, from, to, text)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer 0123456789abcdef-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("API: %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Message-Id")
}

// spoolHas reports whether some file in dir has id in its name.
func spoolHas(t *testing.T, dir, id string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), id) {
			return true
		}
	}
	return false
}
