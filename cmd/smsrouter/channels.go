package main

import (
	"smsrouter/channels"
	"smsrouter/channels/sms"
	"smsrouter/router"
)

// buildChannels makes one channel per service letter from the config. A letter
// without a channel here is bounced with the no_service notice.
func buildChannels(cfg Config, rc router.Config) (map[byte]channels.Channel, error) {
	chans := map[byte]channels.Channel{}
	smsCh, err := sms.New(sms.Config{
		Spool: cfg.Spool, SMSCNumber: cfg.SMSCNumber, CallerIDName: cfg.SMS.CallerIDName,
		WaitTime: cfg.SMS.WaitTime, MaxRetries: cfg.SMS.MaxRetries, RetryTime: cfg.SMS.RetryTime,
		MaxParts: cfg.SMS.MaxParts, Archive: cfg.SMS.Archive, Location: rc.Location,
	})
	if err != nil {
		return nil, err
	}
	chans['S'] = smsCh
	return chans, nil
}
