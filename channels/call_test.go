package channels

import (
	"strings"
	"testing"

	"smsrouter/asteriskconf/callfile"
)

// With a Context the call file starts the generated outcome context and
// carries the application's argument and the attempts in Setvars; without
// one it is exactly the bare-application call file it always was.
func TestCallFileThroughOutcomeContext(t *testing.T) {
	m := Message{ID: "1795239855123-0a1b2c3d4e", To: "5551001", Extension: "PJSIP/1001"}
	d := Dialling{CallerIDName: "Fax", SMSCNumber: "9001", WaitTime: 45, MaxRetries: 3, RetryTime: 300, Archive: true}
	plain, err := d.CallFile(m, "SendFax", "/spool/fax/x.tif", callfile.Var{Name: "FAXOPT(ecm)", Value: "yes"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(plain), "Application: SendFax\nData: /spool/fax/x.tif\n") || strings.Contains(string(plain), "Context:") {
		t.Fatalf("without a context:\n%s", plain)
	}
	d.Context = "smsrouter-fax"
	data, err := d.CallFile(m, "SendFax", "/spool/fax/x.tif", callfile.Var{Name: "FAXOPT(ecm)", Value: "yes"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := callfile.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []callfile.Var{{Name: CallVar, Value: m.ID}, {Name: "FAXOPT(ecm)", Value: "yes"},
		{Name: DataVar, Value: "/spool/fax/x.tif"}, {Name: TriesVar, Value: "4"}}
	if rec.Channel != "PJSIP/1001" || rec.Application != "" || rec.Data != "" || rec.Context != "smsrouter-fax" ||
		rec.Extension != OutcomeExten || rec.Priority != "1" || !rec.Archive || len(rec.Vars) != len(want) || len(rec.Unknown) != 0 {
		t.Fatalf("%+v\n%s", rec, data)
	}
	for i, v := range want {
		if rec.Vars[i] != v {
			t.Errorf("Setvar %d: %+v, want %+v", i, rec.Vars[i], v)
		}
	}
	if !d.Evidenced() || !(Dialling{Context: "x"}).Evidenced() || (Dialling{}).Evidenced() {
		t.Error("Evidenced")
	}
}
