package dlr

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/channels/sms"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// callBed is the dlr bed with the real router and S channel on a spool whose
// calls are archived, so a delivery report waits for what the PBX saw.
type callBed struct {
	*bed
	spool string
	cfg   router.Config
	r     *router.Router
}

func newCallBed(t *testing.T, dsn string) *callBed {
	t.Helper()
	b := &callBed{bed: newBed(t, dsn), spool: t.TempDir()}
	for _, e := range []router.Entry{{Number: "5550001", Letter: 'S', Extension: "PJSIP/5550001"}, {Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}} {
		if err := b.store.Set(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := sms.New(sms.Config{Spool: b.spool, SMSCNumber: "9001", Location: time.UTC, Archive: true})
	if err != nil {
		t.Fatal(err)
	}
	// One more try of an unanswered call, at once.
	b.cfg = router.Config{Spool: b.spool, SMSCNumber: "9001", Location: time.UTC,
		Retry: router.RetryRules{channels.CauseNoAnswer: {Attempts: 1}}}
	b.r, err = router.New(b.cfg, router.NewSQLDirectory(b.store), b.journal, map[byte]channels.Channel{'S': ch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.r.Close() })
	return b
}

func (b *callBed) drain() {
	b.t.Helper()
	if _, err := b.r.Drain(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

// finish archives the waiting call file as pbx_spool does, with the tail a real
// Asterisk appended to the captured archive rel.
func (b *callBed) finish(rel string) {
	b.t.Helper()
	calls, _ := filepath.Glob(filepath.Join(b.spool, "outgoing", "*"))
	if len(calls) != 1 {
		b.t.Fatalf("calls %v", calls)
	}
	data, _ := os.ReadFile(calls[0])
	fx, err := os.ReadFile(filepath.Join("..", "..", "testdata", "asterisk", rel))
	if err != nil {
		b.t.Fatal(err)
	}
	s := string(fx)
	i := strings.Index(s, "\nStartRetry:")
	if i < 0 {
		i = strings.Index(s, "\nStatus:")
	}
	done := filepath.Join(b.spool, "outgoing_done")
	os.MkdirAll(done, 0o755)
	os.WriteFile(filepath.Join(done, filepath.Base(calls[0])), append(data, s[i:]...), 0o644)
	os.Remove(calls[0])
	a, err := router.NewAdmin(b.cfg, b.journal)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := a.RecordEvidence(context.Background(), false); err != nil {
		b.t.Fatal(err)
	}
}

// The HTTP API's dlr-mask: "delivered" comes once the call was answered, after
// a retry of the unanswered first call; "failed" once the last call ended
// unanswered. Nothing final is reported while the PBX has not said.
func TestReportsFollowTheCallOutcome(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newCallBed(t, dsn)
		rec := &recorder{}
		d := b.dispatcher(rec, nil)
		const mask = Delivered | Failed | Accepted
		id, err := b.r.Submit("5550001", "5551001", "call me")
		if err != nil {
			t.Fatal(err)
		}
		b.request(id, mask, true)
		b.drain()
		b.pass(d)
		if got := rec.types(id); !reflect.DeepEqual(got, []Type{Accepted}) {
			t.Fatalf("after the call was placed: %v", got)
		}
		b.finish("call/spool-behaviour/expire-1795239855.call") // retried at once
		b.pass(d)
		b.drain()
		b.pass(d)
		if got := rec.types(id); !reflect.DeepEqual(got, []Type{Accepted}) {
			t.Fatalf("while the retry's call rings: %v", got)
		}
		b.finish("call/spool-behaviour/future-1795239855.call") // answered
		b.pass(d)
		if got := rec.types(id); !reflect.DeepEqual(got, []Type{Accepted, Delivered}) {
			t.Fatalf("after the retry was answered: %v", got)
		}

		id2, _ := b.r.Submit("5550001", "5551001", "nobody home")
		b.request(id2, mask, true)
		b.drain()
		b.finish("call/spool-behaviour/expire-1795239855.call")
		b.drain()
		b.finish("call/spool-behaviour/expire-1795239855.call") // the retry too: no more tries
		b.pass(d)
		if got := rec.types(id2); !reflect.DeepEqual(got, []Type{Accepted, Failed}) {
			t.Fatalf("unanswered twice: %v", got)
		}
	})
}
