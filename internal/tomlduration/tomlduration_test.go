package tomlduration

import (
	"testing"
	"time"
)

func TestUnmarshalText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Fatalf("%v %v", d, err)
	}
	for _, bad := range []string{"-5s", "soon", ""} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDaysAndWeeks(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("90d")); err != nil || d.Duration != 90*24*time.Hour {
		t.Fatalf("%v %v", d, err)
	}
	if err := d.UnmarshalText([]byte("1w3d")); err != nil || d.Duration != 10*24*time.Hour {
		t.Fatalf("%v %v", d, err)
	}
}
