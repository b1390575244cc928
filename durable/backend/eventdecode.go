package backend

import (
	"bytes"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a decoder for the event encoding as EncodeEvent writes
// it: one flat JSON object, no whitespace, each known key at most once,
// lowercase keys, plain decimal numbers, RFC 3339 times, a nested failure
// object and a raw JSON payload. Replaying a long history spends most of
// its time decoding events, and this decoder is several times faster than
// encoding/json for them.
//
// It is only a fast path: it accepts a strict subset of what encoding/json
// accepts, and for that subset gives exactly the wireEvent json.Unmarshal
// gives. Whatever it is not certain about it leaves to encoding/json,
// which then decodes the entry or reports the error: whitespace, unknown
// keys, keys in another letter case or with escapes, duplicate keys, null,
// numbers with a sign, fraction, exponent or leading zero, or out of range,
// times not in the form time.Time's UnmarshalJSON parses directly,
// strings with invalid UTF-8 or unpaired surrogate escapes, payloads
// nested very deep, trailing data. FuzzDecodeFastPath checks the two
// agree.

// decodeWireFast decodes data into w, which must be zero, and reports
// whether it could. When it reports false, w is zero again and the caller
// must decode data with encoding/json.
func decodeWireFast(data []byte, w *wireEvent) bool {
	if !decodeWireObject(data, w) {
		*w = wireEvent{}
		return false
	}
	return true
}

// Bits of the keys of an encoded event, to refuse duplicates.
const (
	keyV = 1 << iota
	keyCodec
	keySeq
	keyType
	keyTime
	keyStep
	keyAttempt
	keyName
	keyPayload
	keyInputHash
	keyFailure
	keyFireAt
	keyVersion
	keyRunID
	keySeed
	keySender
	keyTrace
	keyStarted
	keyParent
)

// Bits of the keys of an encoded failure.
const (
	failureMessage = 1 << iota
	failureType
	failureKind
	failureNonRetryable
	failureStack
	failureDetails
)

// The largest numbers of the integer fields, as encoding/json writes them.
const (
	maxInt64Text  = "9223372036854775807"
	maxUint64Text = "18446744073709551615"
	maxInt        = int(^uint(0) >> 1)
)

// decodeWireObject does the work of decodeWireFast, leaving w partly set
// when it fails.
func decodeWireObject(data []byte, w *wireEvent) bool {
	if len(data) < 2 || data[0] != '{' {
		return false
	}
	if data[1] == '}' {
		return len(data) == 2
	}
	var payload []byte
	var seen uint32
	i := 1
	for {
		key, next, ok := readKey(data, i)
		if !ok {
			return false
		}
		i = next
		var bit uint32
		switch string(key) {
		case "v":
			bit = keyV
			w.V, i, ok = readInt(data, i)
		case "codec":
			bit = keyCodec
			w.Codec, i, ok = readString(data, i)
		case "seq":
			bit = keySeq
			w.Seq, i, ok = readInt64(data, i)
		case "type":
			bit = keyType
			w.Type, i, ok = readEnum(data, i,
				EventRunStarted, EventActivityScheduled, EventActivityAttemptStarted,
				EventActivityAttemptFailed, EventActivityCompleted, EventActivityFailed,
				EventTimerStarted, EventTimerFired, EventTimerCanceled, EventSideEffect,
				EventVersion, EventSignalReceived, EventCancelRequested, EventChildStarted,
				EventChildCompleted, EventRunCompleted, EventRunFailed, EventRunCanceled,
				EventRunContinued, EventResumeRequested)
		case "time":
			bit = keyTime
			w.Time, i, ok = readTime(data, i)
		case "step":
			bit = keyStep
			w.Step, i, ok = readInt(data, i)
		case "attempt":
			bit = keyAttempt
			w.Attempt, i, ok = readInt(data, i)
		case "name":
			bit = keyName
			w.Name, i, ok = readString(data, i)
		case "payload":
			bit = keyPayload
			var end int
			if end, ok = skipValue(data, i); ok {
				payload, i = data[i:end], end
			}
		case "input_hash":
			bit = keyInputHash
			w.InputHash, i, ok = readString(data, i)
		case "failure":
			bit = keyFailure
			w.Failure, i, ok = readFailure(data, i)
		case "fire_at":
			bit = keyFireAt
			w.FireAt, i, ok = readTime(data, i)
		case "version":
			bit = keyVersion
			w.Version, i, ok = readInt(data, i)
		case "run_id":
			bit = keyRunID
			w.RunID, i, ok = readString(data, i)
		case "seed":
			bit = keySeed
			w.Seed, i, ok = readUint64(data, i)
		case "sender":
			bit = keySender
			w.Sender, i, ok = readString(data, i)
		case "trace":
			bit = keyTrace
			var text string
			if text, i, ok = readString(data, i); ok {
				// A bad trace is left to encoding/json to report.
				ok = text != "" && w.Trace.UnmarshalText([]byte(text)) == nil
			}
		case "started":
			bit = keyStarted
			w.Started, i, ok = readTime(data, i)
		case "parent":
			bit = keyParent
			w.Parent, i, ok = readInt(data, i)
		default:
			return false
		}
		if !ok || seen&bit != 0 || i >= len(data) {
			return false
		}
		seen |= bit
		switch data[i] {
		case ',':
			i++
		case '}':
			if i+1 != len(data) {
				return false
			}
			if payload != nil {
				// A copy, as json.RawMessage makes: the caller may
				// reuse data.
				w.Payload = bytes.Clone(payload)
			}
			return true
		default:
			return false
		}
	}
}

// readFailure reads the failure object at data[i].
func readFailure(data []byte, i int) (*Failure, int, bool) {
	if i+1 >= len(data) || data[i] != '{' {
		return nil, 0, false
	}
	f := &Failure{}
	if data[i+1] == '}' {
		return f, i + 2, true
	}
	var seen uint8
	i++
	for {
		key, next, ok := readKey(data, i)
		if !ok {
			return nil, 0, false
		}
		i = next
		var bit uint8
		switch string(key) {
		case "message":
			bit = failureMessage
			f.Message, i, ok = readString(data, i)
		case "type":
			bit = failureType
			f.Type, i, ok = readString(data, i)
		case "kind":
			bit = failureKind
			f.Kind, i, ok = readEnum(data, i,
				KindError, KindCanceled, KindTimeout, KindHeartbeat, KindPanic, KindLost,
				KindNondeterminism, KindCorrupt, KindUnknownEvent, KindUnregistered)
		case "non_retryable":
			bit = failureNonRetryable
			f.NonRetryable, i, ok = readBool(data, i)
		case "stack":
			bit = failureStack
			f.Stack, i, ok = readString(data, i)
		case "details":
			bit = failureDetails
			f.Details, i, ok = readString(data, i)
		default:
			return nil, 0, false
		}
		if !ok || seen&bit != 0 || i >= len(data) {
			return nil, 0, false
		}
		seen |= bit
		switch data[i] {
		case ',':
			i++
		case '}':
			return f, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// readKey reads an object key and its colon at data[i]. Keys with escapes
// are refused; they match no known key as they stand.
func readKey(data []byte, i int) (key []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	start := i + 1
	end := start
	for end < len(data) && data[end] != '"' {
		if data[end] == '\\' {
			return nil, 0, false
		}
		end++
	}
	if end+1 >= len(data) || data[end+1] != ':' {
		return nil, 0, false
	}
	return data[start:end], end + 2, true
}

// readDigits reads a non-negative decimal integer of at most
// len(maxText) digits, and at most maxText, with no leading zero, at
// data[i].
func readDigits(data []byte, i int, maxText string) (n uint64, next int, ok bool) {
	start := i
	for i < len(data) && i-start < len(maxText) {
		d := data[i] - '0'
		if d > 9 {
			break
		}
		n = n*10 + uint64(d)
		i++
	}
	digits := data[start:i]
	switch {
	case len(digits) == 0, len(digits) > 1 && digits[0] == '0':
		return 0, 0, false
	case i < len(data) && data[i]-'0' <= 9:
		return 0, 0, false // too many digits
	case len(digits) == len(maxText) && string(digits) > maxText:
		return 0, 0, false
	}
	return n, i, true
}

// readInt64 reads a number for an int64 field.
func readInt64(data []byte, i int) (int64, int, bool) {
	n, next, ok := readDigits(data, i, maxInt64Text)
	return int64(n), next, ok
}

// readInt reads a number for an int field.
func readInt(data []byte, i int) (int, int, bool) {
	n, next, ok := readDigits(data, i, maxInt64Text)
	if !ok || n > uint64(maxInt) {
		return 0, 0, false
	}
	return int(n), next, true
}

// readUint64 reads a number for a uint64 field.
func readUint64(data []byte, i int) (uint64, int, bool) {
	return readDigits(data, i, maxUint64Text)
}

// readBool reads true or false.
func readBool(data []byte, i int) (bool, int, bool) {
	rest := data[i:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		return true, i + len("true"), true
	case bytes.HasPrefix(rest, []byte("false")):
		return false, i + len("false"), true
	}
	return false, 0, false
}

// readString reads the JSON string at data[i].
func readString(data []byte, i int) (string, int, bool) {
	end, plain, ok := scanString(data, i)
	if !ok {
		return "", 0, false
	}
	if plain {
		return string(data[i+1 : end-1]), end, true
	}
	return unescape(data[i+1 : end-1]), end, true
}

// readEnum reads a string of type T; when it is one of known, it returns
// that value, without allocating.
func readEnum[T ~string](data []byte, i int, known ...T) (T, int, bool) {
	end, plain, ok := scanString(data, i)
	if !ok {
		return "", 0, false
	}
	if !plain {
		return T(unescape(data[i+1 : end-1])), end, true
	}
	s := data[i+1 : end-1]
	for _, k := range known {
		if string(s) == string(k) {
			return k, end, true
		}
	}
	return T(s), end, true
}

// scanString finds the end of the JSON string at data[i] (the index after
// its closing quote) and reports whether it is plain, without escapes. It
// refuses invalid UTF-8 and escaped UTF-16 surrogates that do not make a
// pair, which encoding/json replaces, and control characters, which are
// not JSON.
func scanString(data []byte, i int) (end int, plain bool, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false, false
	}
	plain = true
	j := i + 1
	for j < len(data) {
		c := data[j]
		if ' ' <= c && c < utf8.RuneSelf && c != '"' && c != '\\' {
			j++
			continue
		}
		switch {
		case c == '"':
			return j + 1, plain, true
		case c == '\\':
			plain = false
			if j+1 >= len(data) {
				return 0, false, false
			}
			switch data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				r, ok := hex4(data, j+2)
				switch {
				case !ok:
					return 0, false, false
				case utf16.IsSurrogate(r):
					// Only a pair, high then low.
					r2, ok := hex4(data, j+8)
					if !ok || r >= 0xdc00 || data[j+6] != '\\' || data[j+7] != 'u' || r2 < 0xdc00 || r2 >= 0xe000 {
						return 0, false, false
					}
					j += 12
				default:
					j += 6
				}
			default:
				return 0, false, false
			}
		case c < ' ':
			return 0, false, false
		default:
			r, size := utf8.DecodeRune(data[j:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, false
			}
			j += size
		}
	}
	return 0, false, false
}

// hex4 reads the four hex digits of a \u escape at data[i].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape decodes the content of a JSON string scanString accepted.
func unescape(s []byte) string {
	buf := make([]byte, 0, len(s))
	for j := 0; j < len(s); {
		c := s[j]
		if c != '\\' {
			buf = append(buf, c)
			j++
			continue
		}
		switch c = s[j+1]; c {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r, _ := hex4(s, j+2)
			j += 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(s, j+2)
				r = utf16.DecodeRune(r, r2)
				j += 6
			}
			buf = utf8.AppendRune(buf, r)
			continue
		}
		buf = append(buf, c)
		j += 2
	}
	return string(buf)
}

// maxPayloadDepth is how deeply the fast path follows nested payload
// arrays and objects; deeper payloads go to encoding/json.
const maxPayloadDepth = 256

// skipValue finds the end of the JSON value at data[i], checking its
// syntax as encoding/json does, and refusing whitespace, strings
// scanString refuses, and nesting deeper than maxPayloadDepth.
func skipValue(data []byte, i int) (int, bool) {
	var inObject [maxPayloadDepth / 64]uint64 // a bit per open container
	depth := 0
	for {
		// A value starts at data[i].
		if i >= len(data) {
			return 0, false
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if depth == maxPayloadDepth {
				return 0, false
			}
			object := c == '{'
			if object {
				inObject[depth/64] |= 1 << (depth % 64)
			} else {
				inObject[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i++
			if i < len(data) && (data[i] == '}' && object || data[i] == ']' && !object) {
				i++
				depth--
				break // an empty container: a whole value
			}
			if object {
				var ok bool
				if i, ok = skipKey(data, i); !ok {
					return 0, false
				}
			}
			continue
		case c == '"':
			var ok bool
			if i, _, ok = scanString(data, i); !ok {
				return 0, false
			}
		case c == '-' || '0' <= c && c <= '9':
			var ok bool
			if i, ok = skipNumber(data, i); !ok {
				return 0, false
			}
		case c == 't':
			if !bytes.HasPrefix(data[i:], []byte("true")) {
				return 0, false
			}
			i += len("true")
		case c == 'f':
			if !bytes.HasPrefix(data[i:], []byte("false")) {
				return 0, false
			}
			i += len("false")
		case c == 'n':
			if !bytes.HasPrefix(data[i:], []byte("null")) {
				return 0, false
			}
			i += len("null")
		default:
			return 0, false
		}
		// A value ends at data[i]: close containers, or go on to the
		// next element.
		for {
			if depth == 0 {
				return i, true
			}
			if i >= len(data) {
				return 0, false
			}
			object := inObject[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := data[i]
			if c == ',' {
				i++
				if object {
					var ok bool
					if i, ok = skipKey(data, i); !ok {
						return 0, false
					}
				}
				break
			}
			if c == '}' && object || c == ']' && !object {
				i++
				depth--
				continue
			}
			return 0, false
		}
	}
}

// skipKey skips an object key in a payload and its colon.
func skipKey(data []byte, i int) (int, bool) {
	end, _, ok := scanString(data, i)
	if !ok || end >= len(data) || data[end] != ':' {
		return 0, false
	}
	return end + 1, true
}

// skipNumber skips a JSON number at data[i].
func skipNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return 0, false
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// readTime reads a time in the form time.Time's UnmarshalJSON takes
// through parseRFC3339 (so time.Parse gives the same result):
// 2006-01-02T15:04:05, an optional fraction of digits, then Z or an
// offset ±hh:mm. Times in UTC are built here; an offset goes through
// time.Parse, which picks the local zone or a fixed one as
// UnmarshalJSON does.
func readTime(data []byte, i int) (time.Time, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return time.Time{}, 0, false
	}
	s := data[i+1:] // the time, its closing quote, and what follows
	if len(s) < len(`2006-01-02T15:04:05Z"`) ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, 0, false
	}
	year, ok1 := num(s[0:4], 0, 9999)
	month, ok2 := num(s[5:7], 1, 12)
	day, ok3 := num(s[8:10], 1, 31)
	hour, ok4 := num(s[11:13], 0, 23)
	minute, ok5 := num(s[14:16], 0, 59)
	sec, ok6 := num(s[17:19], 0, 59)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || day > daysInMonth(month, year) {
		return time.Time{}, 0, false
	}
	n := len("2006-01-02T15:04:05")
	nsec := 0
	if s[n] == '.' {
		j := skipDigits(s, n+1)
		if j == n+1 {
			return time.Time{}, 0, false
		}
		// Digits past nanoseconds are dropped, as time does.
		digits := s[n+1 : min(j, n+10)]
		for _, c := range digits {
			nsec = nsec*10 + int(c-'0')
		}
		for range 9 - len(digits) {
			nsec *= 10
		}
		n = j
	}
	zone := s[n:]
	switch {
	case len(zone) >= len(`Z"`) && zone[0] == 'Z' && zone[1] == '"':
		next := i + 1 + n + len(`Z"`)
		return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), next, true
	case len(zone) >= len(`+07:00"`) && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' && zone[6] == '"':
		_, okh := num(zone[1:3], 0, 23)
		_, okm := num(zone[4:6], 0, 59)
		if !okh || !okm {
			return time.Time{}, 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, string(s[:n+len("+07:00")]))
		if err != nil {
			return time.Time{}, 0, false
		}
		return t, i + 1 + n + len(`+07:00"`), true
	}
	return time.Time{}, 0, false
}

// num parses the decimal digits s, checking the value is in [lo, hi].
func num(s []byte, lo, hi int) (int, bool) {
	n := 0
	for _, c := range s {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int(d)
	}
	return n, lo <= n && n <= hi
}

// daysInMonth is the number of days of a month of the proleptic
// Gregorian calendar.
func daysInMonth(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
