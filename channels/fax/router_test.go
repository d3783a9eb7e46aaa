package fax_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hhrutter/tiff"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
	"smsrouter/channels/fax"
	"smsrouter/internal/testdb"
	faxrender "smsrouter/render/fax"
	"smsrouter/router"
)

// TestRouterDeliversFax sends a message to a letter-F recipient through the real
// router, a temporary spool and an SQLite directory, and checks what Asterisk
// would find afterwards.
func TestRouterDeliversFax(t *testing.T) {
	ctx := context.Background()
	spool := t.TempDir()
	store, err := router.OpenStore(testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Set(ctx, router.Entry{Number: "2001", Letter: 'F', Extension: "PJSIP/fax2001"}); err != nil {
		t.Fatal(err)
	}
	ch, err := fax.New(fax.Config{Spool: spool, SMSCNumber: "9001", PDF: true, Render: faxrender.Options{Location: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	journal := router.NewJournal(store)
	r, err := router.New(router.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC},
		router.NewSQLDirectory(store), journal, map[byte]channels.Channel{'F': ch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	id, err := r.Submit("+48600100200", "2001", "Zażółć gęślą jaźń — faks 😀")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[router.StateDelivered] != 1 {
		t.Fatalf("summary %+v; want one delivered", sum.Counts)
	}

	tiffPath := filepath.Join(spool, "fax", fax.TIFFName(id))
	data, err := os.ReadFile(tiffPath)
	if err != nil {
		t.Fatalf("TIFF not in the fax folder: %v", err)
	}
	cfg, err := tiff.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != faxrender.Width {
		t.Errorf("TIFF: %v, width %d", err, cfg.Width)
	}
	if _, err := os.Stat(filepath.Join(spool, "fax", fax.PDFName(id))); err != nil {
		t.Errorf("PDF copy missing: %v", err)
	}

	callData, err := os.ReadFile(filepath.Join(spool, "outgoing", fax.CallName(id)))
	if err != nil {
		t.Fatalf("call file not in outgoing/: %v", err)
	}
	cf, err := callfile.Parse(callData)
	if err != nil {
		t.Fatal(err)
	}
	if cf.Application != "SendFax" || cf.Data != tiffPath || cf.Channel != "PJSIP/fax2001" {
		t.Errorf("call file does not send the TIFF:\n%s", callData)
	}

	rec, err := journal.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != router.StateDelivered || rec.Letter != "F" {
		t.Errorf("journal: state %s letter %s (%s)", rec.State, rec.Letter, rec.LastError)
	}
	if !strings.Contains(rec.Detail, fax.CallName(id)) {
		t.Errorf("journal detail does not name the call file: %s", rec.Detail)
	}
	// Nothing left in the router's staging area.
	if left, _ := os.ReadDir(filepath.Join(spool, "smsrouter", "stage")); len(left) > 0 {
		t.Errorf("staging not empty: %v", left)
	}
}
