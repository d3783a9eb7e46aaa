package smpp

import (
	"fmt"

	"github.com/linxGnu/gosmpp/data"
)

// Status is an SMPP command_status.
type Status uint32

// The statuses this package acts on.
const (
	StatusOK          = Status(data.ESME_ROK)
	StatusMsgQFull    = Status(data.ESME_RMSGQFUL)
	StatusThrottled   = Status(data.ESME_RTHROTTLED)
	StatusSysErr      = Status(data.ESME_RSYSERR)
	StatusInvDstAdr   = Status(data.ESME_RINVDSTADR)
	StatusRxTempAppn  = Status(data.ESME_RX_T_APPN)
	StatusRxPermAppn  = Status(data.ESME_RX_P_APPN)
	StatusInvCmdID    = Status(data.ESME_RINVCMDID)
	StatusInvBindStat = Status(data.ESME_RINVBNDSTS)
)

func (s Status) String() string {
	name := data.CommandStatusType(s).String()
	if len(name) > 5 && name[:5] == "ESME_" {
		return name
	}
	return fmt.Sprintf("status %#08x", uint32(s))
}

// Throttling reports the statuses that ask the client to slow down.
func (s Status) Throttling() bool { return s == StatusThrottled || s == StatusMsgQFull }

// permanentStatuses are the answers about the message itself: sending it
// again unchanged cannot succeed. Anything else (system errors, vendor codes
// 0x400-0x4FF, statuses this list does not know) is taken as temporary, so
// a sick SMSC delays a message until its validity ends rather than bouncing it.
var permanentStatuses = map[Status]bool{
	Status(data.ESME_RINVMSGLEN):    true,
	Status(data.ESME_RINVCMDLEN):    true,
	Status(data.ESME_RINVCMDID):     true,
	Status(data.ESME_RINVPRTFLG):    true,
	Status(data.ESME_RINVREGDLVFLG): true,
	Status(data.ESME_RINVSRCADR):    true,
	Status(data.ESME_RINVDSTADR):    true,
	Status(data.ESME_RINVSERTYP):    true,
	Status(data.ESME_RINVESMCLASS):  true,
	Status(data.ESME_RINVSRCTON):    true,
	Status(data.ESME_RINVSRCNPI):    true,
	Status(data.ESME_RINVDSTTON):    true,
	Status(data.ESME_RINVDSTNPI):    true,
	Status(data.ESME_RINVSYSTYP):    true,
	Status(data.ESME_RINVREPFLAG):   true,
	Status(data.ESME_RINVSCHED):     true,
	Status(data.ESME_RINVEXPIRY):    true,
	Status(data.ESME_RINVDFTMSGID):  true,
	Status(data.ESME_RX_P_APPN):     true,
	Status(data.ESME_RX_R_APPN):     true,
	Status(data.ESME_RPROVNOTALLWD): true,
	Status(data.ESME_RINVPARAM):     true,
	Status(data.ESME_RINVADR):       true,
	0xC0:                            true, // ESME_RINVOPTPARSTREAM
	0xC1:                            true, // ESME_ROPTPARNOTALLWD
	0xC2:                            true, // ESME_RINVPARLEN
	0xC3:                            true, // ESME_RMISSINGOPTPARAM
	0xC4:                            true, // ESME_RINVOPTPARAMVAL
}

// Permanent reports whether the status condemns the message itself.
func (s Status) Permanent() bool { return permanentStatuses[s] }
