package main

import (
	"fmt"
	"path/filepath"
	"time"

	"smsrouter/asteriskconf/dialplan"
	"smsrouter/channels/fax"
	faxrender "smsrouter/render/fax"
)

// renderOptions is the page layout from the [fax] section; loc is the time zone
// the header's date is shown in.
func (f FaxConfig) renderOptions(loc *time.Location) (faxrender.Options, error) {
	opt := faxrender.Options{
		FontFile: f.FontFile, FontSize: f.FontSize, Header: f.Header, DateFormat: f.DateFormat, Location: loc,
	}
	if f.Resolution != "" {
		res, err := faxrender.ParseResolution(f.Resolution)
		if err != nil {
			return opt, fmt.Errorf("[fax] resolution: %w", err)
		}
		opt.Resolution = res
	}
	return opt, nil
}

// channelConfig is the F channel's configuration from the [fax] section.
func (f FaxConfig) channelConfig(cfg Config, loc *time.Location) (fax.Config, error) {
	opt, err := f.renderOptions(loc)
	if err != nil {
		return fax.Config{}, err
	}
	dir := f.Dir
	if dir != "" && !filepath.IsAbs(dir) {
		return fax.Config{}, fmt.Errorf("[fax] dir %q: must be an absolute path (SendFax reads it)", dir)
	}
	return fax.Config{
		Spool: cfg.Spool, Dir: dir, Render: opt, PDF: f.PDF,
		SMSCNumber: cfg.SMSCNumber, CallerIDName: f.CallerIDName,
		LocalStationID: f.LocalStationID, HeaderInfo: f.HeaderInfo, ECM: f.ECM,
		MinRate: f.MinRate, MaxRate: f.MaxRate,
		WaitTime: f.WaitTime, MaxRetries: f.MaxRetries, RetryTime: f.RetryTime, Archive: f.Archive,
		OutcomeContext: cfg.outcomeContext(dialplan.OutcomeFaxContext),
		Keep:           f.Keep.Duration,
	}, nil
}
