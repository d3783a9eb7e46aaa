package agi

import (
	"errors"
	"fmt"
	"strings"
)

// MaxCommandBytes is the longest command line, LF included, that Asterisk
// reads in one piece (its AGI_BUF_LEN is 8192 with room kept for the
// terminator). A longer line would be cut and its tail run as a second
// command, so FormatCommand refuses it.
const MaxCommandBytes = 8190

// ErrUnquotable reports a word Asterisk's parser cannot carry: CR, LF or NUL.
var ErrUnquotable = errors.New("agi: word contains CR, LF or NUL")

// ErrCommandTooLong reports a command line above MaxCommandBytes.
var ErrCommandTooLong = errors.New("agi: command line too long")

// Quote returns word in the form Asterisk's parse_args reads back as exactly
// that word. Plain words go as they are; others are double-quoted with '"'
// and '\' escaped by a backslash (the escape is honoured inside quotes too).
func Quote(word string) (string, error) {
	b, err := appendQuoted(nil, word)
	return string(b), err
}

// byteClass sorts the bytes of a word for appendQuoted: plain, needing
// quotes, or impossible. One table look-up per byte instead of two
// strings.ContainsAny per word, which were 4,500 instructions of every
// chaninfo request (issue 17, callgrind).
var byteClass = func() (c [256]uint8) {
	for _, b := range []byte(" \t\"\\") {
		c[b] = quoteIt
	}
	for _, b := range []byte("\r\n\x00") {
		c[b] = unquotable
	}
	return c
}()

const (
	quoteIt    = 1
	unquotable = 2
)

func appendQuoted(dst []byte, word string) ([]byte, error) {
	var class uint8
	for i := 0; i < len(word); i++ {
		class |= byteClass[word[i]]
	}
	if class&unquotable != 0 {
		return dst, ErrUnquotable
	}
	if word != "" && class == 0 {
		return append(dst, word...), nil
	}
	// An empty word must still be sent: `""` starts a word and ends it empty.
	dst = append(dst, '"')
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"'), nil
}

// FormatCommand returns the command line for words, LF included.
func FormatCommand(words ...string) (string, error) {
	b, err := appendCommand(nil, words)
	return string(b), err
}

func appendCommand(dst []byte, words []string) ([]byte, error) {
	if len(words) == 0 {
		return dst, errors.New("agi: empty command")
	}
	start := len(dst)
	for i, w := range words {
		if i > 0 {
			dst = append(dst, ' ')
		}
		var err error
		if dst, err = appendQuoted(dst, w); err != nil {
			return dst[:start], fmt.Errorf("agi: %s: word %d: %w", verb(words), i+1, err)
		}
	}
	dst = append(dst, '\n')
	if len(dst)-start > MaxCommandBytes {
		return dst[:start], fmt.Errorf("agi: %s: %d bytes: %w", verb(words), len(dst)-start, ErrCommandTooLong)
	}
	return dst, nil
}

// verb names a command for errors and logs without its arguments, which may
// carry message text: the leading words made of upper-case letters
// ("SET VARIABLE", "GET FULL VARIABLE").
func verb(words []string) string {
	n := 0
	for _, w := range words {
		if w == "" || strings.TrimLeft(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			break
		}
		n++
	}
	if n == 0 {
		if len(words) == 0 {
			return "(empty)"
		}
		return fmt.Sprintf("%.20q", words[0])
	}
	return strings.Join(words[:n], " ")
}
