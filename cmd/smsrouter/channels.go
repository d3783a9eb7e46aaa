package main

import (
	"smsrouter/channels"
	commandch "smsrouter/channels/command"
	"smsrouter/channels/fax"
	"smsrouter/channels/sms"
	"smsrouter/channels/voice"
	"smsrouter/router"
)

// buildChannels makes one channel per service letter from the config. A letter
// without a channel here is bounced with the no_service notice.
func buildChannels(cfg Config, rc router.Config, store *router.Store) (map[byte]channels.Channel, error) {
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
	faxCfg, err := cfg.Fax.channelConfig(cfg, rc.Location)
	if err != nil {
		return nil, err
	}
	faxCh, err := fax.New(faxCfg)
	if err != nil {
		return nil, err
	}
	chans['F'] = faxCh
	cmdCh, err := commandch.New(cfg.Command, commandch.Env{
		Inbox: router.InboxDir(cfg.workDir()), WorkDir: cfg.workDir(), Location: rc.Location,
	})
	if err != nil {
		return nil, err
	}
	chans['C'] = cmdCh
	voiceCfg, err := cfg.Voice.channelConfig(cfg, rc.Location, rc.DeliveryTimeout)
	if err != nil {
		return nil, err
	}
	if store != nil {
		voiceCfg.Options = store.VoiceOptions
	}
	voiceCh, err := voice.New(voiceCfg)
	if err != nil {
		return nil, err
	}
	chans['V'] = voiceCh
	if err := addSIP(chans, cfg); err != nil {
		return nil, err
	}
	return chans, nil
}
