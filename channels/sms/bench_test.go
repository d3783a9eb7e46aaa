package sms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"smsrouter/channels"
)

// BenchmarkBatch is one batch of 256 messages, each to a phone with no call
// pending, as a drain of one message per phone makes them, beside 0 and 20,000
// call files for other phones in outgoing/. Issue 17: the cost of a batch must
// not grow with outgoing/ (it listed and lstat-ed every call file per batch).
func BenchmarkBatch(b *testing.B) {
	for _, others := range []int{0, 20000} {
		b.Run(fmt.Sprintf("outgoing=%d", others), func(b *testing.B) {
			spool := b.TempDir()
			out := filepath.Join(spool, "outgoing")
			if err := os.MkdirAll(out, 0o755); err != nil {
				b.Fatal(err)
			}
			body := []byte("Channel: PJSIP/x\nApplication: SMS\nData: x,s\nMaxRetries: 60\nRetryTime: 60\nWaitTime: 20\n")
			for i := range others {
				if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("smsrouter.mttx.%d.1795240000000-00000000%02x", 7000000+i, i%256)), body, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			c, err := New(Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			m := channels.Message{From: "5550001", Text: "Running 10 min late, sorry!", Received: time.Unix(1795240000, 0),
				Letter: 'S', Attempt: 1, ID: channels.NewID(time.Unix(1795240000, 0))}
			phone := 0
			batch := func() {
				c.StartBatch()
				for range 256 {
					phone++
					m.To = fmt.Sprint(5000000 + phone)
					m.Extension = "PJSIP/" + m.To
					if _, err := c.Deliver(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
			}
			batch() // the first look at outgoing/ is a start-up cost, not a batch's
			for b.Loop() {
				batch()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/msg")
		})
	}
}
