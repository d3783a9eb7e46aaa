//go:build !smsrouter_testpaths

package main

// systemConfigPath is where config discovery looks after --config and
// $SMSROUTER_CONFIG. It is fixed in every binary that is installed; only the
// test build (syspath_testpaths.go) can move it.
func systemConfigPath() string { return systemConfig }
