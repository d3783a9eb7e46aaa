package sip_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"smsrouter/channels"
)

// BenchmarkSIPDeliver measures whole deliveries (sent-marker check,
// reachability, MessageSend, marker write) from parallel goroutines over one
// AMI connection to the fake server; reported as msgs/s.
func BenchmarkSIPDeliver(b *testing.B) {
	pbx := newPBX(b)
	pbx.Set("1000", "Reachable")
	cfg := pbxConfig(pbx, b, nil)
	cfg.ReachableTTL = 0 // the default cache, as in production
	ch := newChannel(b, cfg)
	ctx := context.Background()
	if _, err := ch.Deliver(ctx, msg("warm-up", "x")); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(4) // like the router's parallel deliveries
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := channels.Message{ID: fmt.Sprintf("1795240000123-%010x", seq.Add(1)), From: "5550001", To: "5551000",
				Text: "Hello from the benchmark", Letter: 'T', Extension: "PJSIP/1000"}
			if _, err := ch.Deliver(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
