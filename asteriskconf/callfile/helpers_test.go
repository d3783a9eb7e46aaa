package callfile

import (
	"fmt"
	"slices"
)

// diffCallFile describes the first difference in meaning between two call
// files, or returns "".
func diffCallFile(got, want *CallFile) string {
	strs := []struct {
		name string
		g, w string
	}{
		{"Channel", got.Channel, want.Channel},
		{"CallerID", got.CallerID, want.CallerID},
		{"Application", got.Application, want.Application},
		{"Data", got.Data, want.Data},
		{"Context", got.Context, want.Context},
		{"Extension", got.Extension, want.Extension},
		{"Priority", got.Priority, want.Priority},
		{"Account", got.Account, want.Account},
		{"Codecs", got.Codecs, want.Codecs},
	}
	for _, s := range strs {
		if s.g != s.w {
			return fmt.Sprintf("%s = %q, want %q", s.name, s.g, s.w)
		}
	}
	ints := []struct {
		name string
		g, w int
	}{
		{"WaitTime", got.WaitTime, want.WaitTime},
		{"MaxRetries", got.MaxRetries, want.MaxRetries},
		{"RetryTime", got.RetryTime, want.RetryTime},
	}
	for _, n := range ints {
		if n.g != n.w {
			return fmt.Sprintf("%s = %d, want %d", n.name, n.g, n.w)
		}
	}
	if got.Archive != want.Archive || got.EarlyMedia != want.EarlyMedia {
		return fmt.Sprintf("Archive/EarlyMedia = %v/%v, want %v/%v", got.Archive, got.EarlyMedia, want.Archive, want.EarlyMedia)
	}
	if (got.AlwaysDelete == nil) != (want.AlwaysDelete == nil) ||
		(got.AlwaysDelete != nil && *got.AlwaysDelete != *want.AlwaysDelete) {
		return fmt.Sprintf("AlwaysDelete = %v, want %v", fmtBoolPtr(got.AlwaysDelete), fmtBoolPtr(want.AlwaysDelete))
	}
	if !slices.Equal(got.Vars, want.Vars) {
		return fmt.Sprintf("Vars = %q, want %q", got.Vars, want.Vars)
	}
	return ""
}

func fmtBoolPtr(p *bool) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
