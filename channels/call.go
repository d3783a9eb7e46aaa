package channels

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"smsrouter/asteriskconf/callfile"
)

// Dialling is how a channel's calls reach the recipient: who they appear to come
// from, and how long they ring and retry.
type Dialling struct {
	CallerIDName string // e.g. "SMS", "Fax"
	SMSCNumber   string // the caller ID number; "" shows the name only
	WaitTime     int    // seconds to ring
	MaxRetries   int    // further attempts when nobody answers
	RetryTime    int    // seconds between attempts
	Archive      bool   // keep the finished call in outgoing_done/ (delivery evidence)
	// Context, when set, names the generated dialplan context (`smsrouter
	// dialplan` with [dialplan] outcome) the answered call runs instead of the
	// bare application: it runs the same application on DataVar and reports
	// what the PBX saw (the fax's result, a busy line) to FastAGI callresult.
	Context string
}

// Channel variables of a call through an outcome context (Dialling.Context).
const (
	DataVar  = "SMSROUTER_DATA"  // the application's argument, e.g. the TIFF path
	TriesVar = "SMSROUTER_TRIES" // attempts in all (MaxRetries+1): a result of the last one is final
	// OutcomeExten is the extension the call file starts the context at.
	OutcomeExten = "s"
)

// Evidenced reports whether the outcome of the calls d places will be known:
// archived in outgoing_done/, or reported by the outcome context.
func (d Dialling) Evidenced() bool { return d.Archive || d.Context != "" }

// AwaitsCall is the Result.Detail key a channel sets (to true) when the call it
// placed will be archived in outgoing_done/ with the message's id: the outcome of
// the delivery is then known only once Asterisk has written the call's Status
// (the router's evidence), and status and delivery reports wait for it.
const AwaitsCall = "awaits_call"

// CallVar names the channel variable that carries the message id on every call, so
// an archived call in outgoing_done/ can be tied to its journal row.
const CallVar = "SMSROUTER_ID"

// CallFile is the call file that dials m's recipient (its Extension) and runs
// app(data) when answered, with vars set before the app runs. With a Context,
// the call starts there instead and data travels in DataVar: the context runs
// the same application, so only what is reported afterwards differs.
func (d Dialling) CallFile(m Message, app, data string, vars ...callfile.Var) ([]byte, error) {
	cf := &callfile.CallFile{
		Channel:     m.Extension,
		CallerID:    d.CallerIDName,
		Application: app,
		Data:        data,
		MaxRetries:  d.MaxRetries,
		RetryTime:   d.RetryTime,
		WaitTime:    d.WaitTime,
		Archive:     d.Archive,
		Vars:        append([]callfile.Var{{Name: CallVar, Value: m.ID}}, vars...),
	}
	if d.Context != "" {
		cf.Application, cf.Data = "", ""
		cf.Context, cf.Extension, cf.Priority = d.Context, OutcomeExten, "1"
		cf.Vars = append(cf.Vars, callfile.Var{Name: DataVar, Value: data},
			callfile.Var{Name: TriesVar, Value: fmt.Sprint(d.MaxRetries + 1)})
	}
	if d.SMSCNumber != "" {
		cf.CallerID = fmt.Sprintf("\"%s\" <%s>", d.CallerIDName, d.SMSCNumber)
	}
	b, err := cf.Marshal()
	if err != nil {
		return nil, fmt.Errorf("call file for %s: %w", m.To, err)
	}
	return b, nil
}

// CheckExtension refuses a recipient the directory gives no dialable Extension,
// by the same rule as CheckDestination. The router already bounces such rows, so
// this guards channels driven by another Directory; the error stays temporary
// there: an admin can fix the directory while the message waits.
func CheckExtension(m Message) error {
	if err := checkDial(m.Letter, m.Extension); err != nil {
		return fmt.Errorf("number %s in PBXNumbers: %w", m.To, err)
	}
	return nil
}

// RemoveOld deletes the regular files in dir that are older than keep and that own
// says are ours; everything else in the folder is left alone.
func RemoveOld(ctx context.Context, dir string, now time.Time, keep time.Duration, own func(name string) bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() || !own(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < keep {
			continue // removed meanwhile, or still young
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	return nil
}
