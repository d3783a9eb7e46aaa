//go:build smsrouter_testpaths

package main

import "os"

// systemConfigPath, in the binary the tests build with -tags
// smsrouter_testpaths, honours SMSROUTER_TEST_SYSTEM_CONFIG (empty: no system
// file), so that the discovery order is tested on the real binary without
// writing to /etc, and no test ever reads the machine's own configuration.
// Installed binaries are built without the tag and have no such variable.
func systemConfigPath() string {
	if p, ok := os.LookupEnv("SMSROUTER_TEST_SYSTEM_CONFIG"); ok {
		return p
	}
	return systemConfig
}
