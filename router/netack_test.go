package router

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/channels/sms"
)

// okChannel takes every message at once, like a softphone that answers
// MessageSend with Success.
type okChannel struct{}

func (okChannel) Deliver(context.Context, channels.Message) (channels.Result, error) {
	return channels.Result{Detail: map[string]any{"taken": true}}, nil
}

// ackRig is linkRig whose S channel archives its call files (delivery
// evidence) and whose 1004 is a T number on okChannel.
func ackRig(t *testing.T, dsn string, mutate func(*Config)) (*rig, *fakeLink) {
	t.Helper()
	rg, gsm, _ := linkRig(t, dsn, mutate)
	rg.set("1004", 'T', "PJSIP/1004")
	withChannels(t, rg, sms.Config{Archive: true})
	return rg, gsm
}

// withChannels gives rg a new router whose S channel is sc (spool, SMSC
// number and zone filled in) beside a T channel that always delivers.
func withChannels(t *testing.T, rg *rig, sc sms.Config) {
	t.Helper()
	cfg := rg.r.cfg
	rg.r.Close()
	sc.Spool, sc.SMSCNumber, sc.Location = cfg.Spool, cfg.SMSCNumber, time.UTC
	s, err := sms.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, rg.directory(), rg.journal, map[byte]channels.Channel{'S': s, 'T': okChannel{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = rg.clock.now
	t.Cleanup(func() { r.Close() })
	rg.r = r
}

// mobileMessage queues what the mobile ingress queues for a deliver_sm that
// asked for an acknowledgement (req, nil for none), and returns its id.
func (rg *rig) mobileMessage(text string, udh []byte, req string) string {
	rg.t.Helper()
	m := &smsq.Message{OA: "+48601234567", DA: "+48221234567", SCTS: rg.clock.now().UTC().Truncate(time.Second), DCS: -1, MR: -1,
		Text: text, UDH: udh, HasUDH: udh != nil}
	data, err := m.Marshal()
	if err != nil {
		rg.t.Fatal(err)
	}
	id := NewID(rg.clock.now())
	work := filepath.Join(rg.spool, "smsrouter")
	if req != "" {
		if err := WriteAckRequest(work, id, []byte(req), false); err != nil {
			rg.t.Fatal(err)
		}
	}
	rg.inbox(channels.SpoolName("+48221234567", id, 0), string(data))
	return id
}

// answers are the reports the link was given to send as acknowledgements.
func answers(gsm *fakeLink) []channels.Message {
	var out []channels.Message
	for _, m := range gsm.messages() {
		if m.Acknowledges != nil {
			out = append(out, m)
		}
	}
	return out
}

func networkAck(t *testing.T, r Record) map[string]any {
	t.Helper()
	na, _ := detailOf(t, r)["network_ack"].(map[string]any)
	return na
}

// TestAckJoinedParts: a long text whose two parts each asked for an
// acknowledgement is answered part by part, each report carrying its own
// request, once the joined text reached the softphone.
func TestAckJoinedParts(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg, gsm := ackRig(t, dsn, nil)
		reqs := []string{`{"link":"gsm","kind":"delivery","user_message_reference":7}`, `{"link":"gsm","kind":"delivery","user_message_reference":8}`}
		first := rg.mobileMessage("1004 hello ", []byte{0x00, 0x03, 0x42, 2, 1}, reqs[0])
		rg.drain()
		rg.mobileMessage("world", []byte{0x00, 0x03, 0x42, 2, 2}, reqs[1])
		rg.drain()
		r := rg.record(first)
		if r.State != StateDelivered || r.Letter != "T" || r.Text != "hello world" {
			t.Fatalf("joined: %+v", r)
		}
		d := detailOf(t, r)
		ids, _ := d["report_ids"].([]any)
		if na := networkAck(t, r); na["state"] != "queued" || d["report"] != "delivered" || len(ids) != 2 || d["report_id"] != ids[0] {
			t.Fatalf("detail %v", d)
		}
		got := answers(gsm)
		if len(got) != 2 {
			t.Fatalf("reports through the link: %+v", gsm.messages())
		}
		// The two reports go in one batch, in either order: each by its id.
		for _, m := range got {
			i := 0
			if m.ID == ids[1] {
				i = 1
			}
			if string(m.Acknowledges) != reqs[i] || m.To != "+48601234567" || m.From != "9001" || m.Depth != 1 ||
				!strings.HasPrefix(m.Text, "Delivered to 1004 by SIP message, ") || m.ID != ids[i].(string) {
				t.Fatalf("report %d: %+v", i, m)
			}
			if rep := rg.record(m.ID); rep.State != StateDelivered || rep.Letter != "L" {
				t.Fatalf("report row %+v", rep)
			}
		}
		// The request files went with their messages; nothing else is left.
		if f := append(rg.files("smsrouter/acks"), rg.files("smsrouter/acks-out")...); len(f) != 0 {
			t.Fatalf("left behind: %v", f)
		}
		rg.assertIdle()
	})
}

// TestAckAfterRetriedCall: an unanswered S call is retried by its rule; the
// acknowledgement waits for the retry's call and is sent once, delivered.
func TestAckAfterRetriedCall(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg, gsm := ackRig(t, dsn, func(c *Config) {
			c.Retry = RetryRules{channels.CauseNoAnswer: {Delay: time.Minute, Attempts: 1}}
		})
		ctx := context.Background()
		id := rg.mobileMessage("1001 ring twice", nil, `{"link":"gsm","kind":"delivery"}`)
		rg.drain()
		if na := networkAck(t, rg.record(id)); na["state"] != "pending" {
			t.Fatalf("before the call: %v", na)
		}
		archive(t, rg, tailOf(t, "call/spool-behaviour/expire-1795239855.call"))
		sum, err := rg.admin().RecordEvidence(ctx, false)
		if err != nil || len(sum.Retried) != 1 || len(sum.Reports) != 0 {
			t.Fatalf("evidence: %+v %v", sum, err)
		}
		retry := sum.Retried[0]
		if na := networkAck(t, rg.record(id)); na["state"] != "carried on by "+retry {
			t.Fatalf("after the unanswered call: %v", na)
		}
		rg.clock.advance(2 * time.Minute)
		rg.drain()
		if na := networkAck(t, rg.record(retry)); na["state"] != "pending" {
			t.Fatalf("the retry: %v", rg.record(retry).Detail)
		}
		if n := len(answers(gsm)); n != 0 {
			t.Fatalf("%d reports before the retry's call ended", n)
		}
		archive(t, rg, "\nStartRetry: 1 1 (1795239857)\nStatus: Completed\n")
		sum, err = rg.admin().RecordEvidence(ctx, false)
		if err != nil || len(sum.Reports) != 1 {
			t.Fatalf("evidence: %+v %v", sum, err)
		}
		// Evidence read twice: still one report.
		if sum, err := rg.admin().RecordEvidence(ctx, false); err != nil || len(sum.Reports) != 0 {
			t.Fatalf("evidence again: %+v %v", sum, err)
		}
		rg.drain()
		got := answers(gsm)
		if len(got) != 1 || !strings.HasPrefix(got[0].Text, "Delivered to 1001 by SMS, ") || got[0].ID != sum.Reports[0] {
			t.Fatalf("reports %+v", got)
		}
		if d := detailOf(t, rg.record(retry)); d["report"] != "delivered" || d["report_id"] != got[0].ID {
			t.Fatalf("retry's detail %v", d)
		}
	})
}

// TestAckFailuresAndSettings: a failure is answered with the notice's reason;
// [reports] letters = "-" and a sender without a number get none, and the
// journal says why; a message that asked nothing carries nothing.
func TestAckFailuresAndSettings(t *testing.T) {
	rg, gsm := ackRig(t, testdbSQLite(t), nil)
	req := `{"link":"gsm","kind":"manual"}`
	unknown := rg.mobileMessage("1099 anybody?", nil, req)
	plain := rg.mobileMessage("1004 no request", nil, "")
	rg.drain()
	if r := rg.record(unknown); r.State != StateBounced || detailOf(t, r)["report"] != "failed" {
		t.Fatalf("unknown: %+v", r)
	}
	if d := rg.record(plain).Detail; strings.Contains(d, "network_ack") || strings.Contains(d, "report") {
		t.Fatalf("plain: %s", d)
	}
	got := answers(gsm)
	if len(got) != 1 || got[0].Text != "Not delivered to 1099: Number does not exist." {
		t.Fatalf("reports %+v", got)
	}

	// Reports off.
	rg2, gsm2 := ackRig(t, testdbSQLite(t), func(c *Config) { c.Reports.Letters = "-" })
	off := rg2.mobileMessage("1004 reports off", nil, req)
	rg2.drain()
	if na := networkAck(t, rg2.record(off)); !strings.HasPrefix(na["state"].(string), "not sent: reports are off") {
		t.Fatalf("reports off: %v", na)
	}
	if n := len(answers(gsm2)); n != 0 {
		t.Fatalf("%d reports with reports off", n)
	}
	if files := rg2.files("smsrouter/acks"); len(files) != 0 {
		t.Fatalf("left behind: %v", files)
	}
}

// TestAckSaysWhatThePBXSaw: with the outcome contexts on, an acknowledgement
// after a call is judged as the sender's notice is: a busy line is reported
// as busy, not as delivered or unanswered (issue 16's dial status).
func TestAckSaysWhatThePBXSaw(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg, gsm := ackRig(t, dsn, func(c *Config) { c.Retry = RetryRules{channels.CauseBusy: {Delay: time.Minute}} })
		withChannels(t, rg, sms.Config{Archive: true, MaxRetries: 1, OutcomeContext: "smsrouter-sms"})
		id := rg.mobileMessage("1001 are you there", nil, `{"link":"gsm","kind":"delivery"}`)
		rg.drain()
		rg.callResult(CallResult{ID: id, What: ResultDial, Attempt: 2, Tries: 2, Status: "5"})
		archive(t, rg, tailOf(t, "call/spool-behaviour/expire-1795239855.call"))
		sum, err := rg.admin().RecordEvidence(context.Background(), false)
		if err != nil || len(sum.Reports) != 1 || len(sum.Retried) != 0 {
			t.Fatalf("evidence: %+v %v", sum, err)
		}
		rg.drain()
		got := answers(gsm)
		if len(got) != 1 || got[0].Text != "Not delivered to 1001: The line was busy." {
			t.Fatalf("reports %+v", got)
		}
	})
}
