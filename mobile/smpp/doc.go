// Package smpp is an SMPP 3.4 client (ESME) for one account at an SMSC: it
// keeps the binds up, submits texts and hands over what the SMSC delivers
// (mobile-originated messages and delivery receipts). It knows the wire
// protocol and nothing about routes, letters or the journal; the link's
// channel and ingress are built on Client.Submit and Config.Handler.
//
// PDUs are coded by github.com/linxGnu/gosmpp's pdu package. Its session
// layer is not used, for reasons a gateway cannot live with (gosmpp v0.3.1):
// binding has no timeout; rebinding is at a fixed interval with no context;
// a full window is reported asynchronously instead of holding the caller;
// PDUs queued when a connection dies are dropped without a word, so "not
// sent" cannot be told from "sent, no answer"; SubmitSM.Split gives every
// part the same sequence number; a deliver_sm whose header it cannot read
// closes the connection (and the SMSC sends it again, for ever); and
// deliver_sm_resp is either sent before the application has stored the
// message (OnPDU) or returned by a callback that blocks the only reader,
// so no submit_sm_resp is read while a message is being stored (OnAllPDU).
// This package frames PDUs itself and owns the session: dial and bind with
// deadlines, reconnect with exponential backoff, enquire_link with a
// response deadline, a window and a rate limit, and deliver_sm_resp only
// when the application acknowledges.
//
// # What a Submit result means
//
// Submit returns the SMSC's message id of every part, or an error that says
// exactly how much is known:
//
//   - IsUncertain(err): a submit_sm went out and no answer came (timeout, the
//     connection died, the caller gave up). The SMSC may have accepted it;
//     resending may deliver twice. SubmitError.Accepted lists the parts that
//     were accepted for sure.
//   - IsTemporary(err) and not uncertain: nothing more than Accepted was
//     taken (not bound, throttled until the deadline, a temporary status such
//     as ESME_RSYSERR). Retry later.
//   - otherwise permanent: the SMSC refused the message (ESME_RINVDSTADR...).
//
// Throttling (ESME_RTHROTTLED, ESME_RMSGQFUL) never fails a message: the
// client slows down for every caller and retries the part until the caller's
// context ends.
//
// # Deliveries
//
// Every deliver_sm and data_sm becomes a Delivery passed to Config.Handler
// in a goroutine of its own. The SMSC gets its deliver_sm_resp only when the
// handler calls Delivery.Ack: Ack(nil) after the message is safely stored,
// Ack(err) to have the SMSC deliver it again later (ESME_RX_T_APPN), or
// Ack(Reject(err)) for a message that will never be acceptable
// (ESME_RX_P_APPN). Concatenated parts are handed over one by one with
// their Concat place; join them with smstext.Reassembler and acknowledge the
// parts when the whole is stored.
package smpp
