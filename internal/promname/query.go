package promname

import (
	"fmt"
	"slices"
	"strings"
)

// Query is what a PromQL expression names.
type Query struct {
	// Metrics are the metric names of its selectors, sorted, each once.
	Metrics []string
	// Labels are the label names it matches on (in selectors) or groups
	// and joins by (by, without, on, ignoring, group_left, group_right),
	// sorted, each once.
	Labels []string
}

// ParseQuery returns the metric and label names a PromQL expression
// names. Grafana's variables ($name, ${name}, [[name]] aside) may stand
// where PromQL takes a string, a number or a duration. It is not a full
// PromQL parser: it finds names, it does not check the expression's
// grammar, and it rejects what would hide a name from it: a selector
// without a metric name, or whose name is matched by __name__ other than
// with "=".
func ParseQuery(expr string) (Query, error) {
	l := lexer{src: expr}
	var metrics, labels []string
	for {
		tok, err := l.next()
		if err != nil {
			return Query{}, fmt.Errorf("promql %q: %w", expr, err)
		}
		switch tok.kind {
		case tokEOF:
			slices.Sort(metrics)
			slices.Sort(labels)
			return Query{Metrics: slices.Compact(metrics), Labels: slices.Compact(labels)}, nil
		case tokIdent:
			switch {
			case groups(tok.text):
				names, err := l.labelList()
				if err != nil {
					return Query{}, fmt.Errorf("promql %q: %s: %w", expr, tok.text, err)
				}
				labels = append(labels, names...)
			case keyword(tok.text), l.peekByte() == '(':
				// an operator, a modifier, or a function's name
			default:
				metrics = append(metrics, tok.text)
				if l.peekByte() == '{' {
					l.pos = l.skipSpace() + 1 // past the "{"
					m, err := l.matchers()
					if err != nil {
						return Query{}, fmt.Errorf("promql %q: %s: %w", expr, tok.text, err)
					}
					if m.name != "" {
						return Query{}, fmt.Errorf("promql %q: %s: a selector with a name and __name__", expr, tok.text)
					}
					labels = append(labels, m.labels...)
				}
			}
		case tokBrace:
			m, err := l.matchers()
			if err != nil {
				return Query{}, fmt.Errorf("promql %q: %w", expr, err)
			}
			if m.name == "" {
				return Query{}, fmt.Errorf("promql %q: a selector without a metric name", expr)
			}
			metrics = append(metrics, m.name)
			labels = append(labels, m.labels...)
		}
	}
}

// groups reports whether word is followed by a list of labels in
// parentheses.
func groups(word string) bool {
	switch strings.ToLower(word) {
	case "by", "without", "on", "ignoring", "group_left", "group_right":
		return true
	}
	return false
}

// keyword reports whether word is one of PromQL's, which name no metric:
// an operator, a modifier, a number, or an aggregation (which may be
// followed by "by (...)" rather than by its parenthesis).
func keyword(word string) bool {
	switch strings.ToLower(word) {
	case "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end",
		"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio":
		return true
	}
	return false
}

type tokKind int

const (
	tokEOF   tokKind = iota
	tokIdent         // a name: a metric's, a function's, a keyword
	tokBrace         // "{": a selector's matchers follow
	tokOther         // anything else: a number, a string, an operator, a variable, a duration
)

type token struct {
	kind tokKind
	text string
}

// lexer reads the tokens of a PromQL expression.
type lexer struct {
	src string
	pos int
}

func (l *lexer) skipSpace() int {
	p := l.pos
	for p < len(l.src) && strings.IndexByte(" \t\r\n", l.src[p]) >= 0 {
		p++
	}
	return p
}

// peekByte returns the next byte after spaces, or 0 at the end.
func (l *lexer) peekByte() byte {
	if p := l.skipSpace(); p < len(l.src) {
		return l.src[p]
	}
	return 0
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func (l *lexer) next() (token, error) {
	l.pos = l.skipSpace()
	if l.pos >= len(l.src) {
		return token{kind: tokEOF}, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '{':
		l.pos++
		return token{kind: tokBrace}, nil
	case c == '"' || c == '\'' || c == '`':
		_, err := l.str()
		return token{kind: tokOther}, err
	case c == '[':
		// a range, a subquery's range and step, or Grafana's [[var]]
		end := strings.IndexByte(l.src[l.pos:], ']')
		if end < 0 {
			return token{}, fmt.Errorf("unclosed [ at %d", l.pos)
		}
		l.pos += end + 1
		if l.pos < len(l.src) && l.src[l.pos] == ']' {
			l.pos++
		}
		return token{kind: tokOther}, nil
	case c == '$':
		l.pos++
		if l.pos < len(l.src) && l.src[l.pos] == '{' {
			end := strings.IndexByte(l.src[l.pos:], '}')
			if end < 0 {
				return token{}, fmt.Errorf("unclosed ${ at %d", l.pos)
			}
			l.pos += end + 1
		} else {
			for l.pos < len(l.src) && isIdent(l.src[l.pos]) {
				l.pos++
			}
		}
		return token{kind: tokOther}, nil
	case c >= '0' && c <= '9' || c == '.':
		// a number or a duration: digits, letters (e, x, ms, h), dots, and
		// an exponent's sign
		for l.pos < len(l.src) {
			d := l.src[l.pos]
			if isIdent(d) || d == '.' || (d == '+' || d == '-') && strings.ContainsRune("eE", rune(l.src[l.pos-1])) {
				l.pos++
				continue
			}
			break
		}
		return token{kind: tokOther}, nil
	case isIdentStart(c):
		start := l.pos
		for l.pos < len(l.src) && isIdent(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokIdent, text: l.src[start:l.pos]}, nil
	}
	l.pos++
	return token{kind: tokOther}, nil
}

// str reads a quoted string and returns its content, escapes left as
// they are.
func (l *lexer) str() (string, error) {
	q := l.src[l.pos]
	start := l.pos
	l.pos++
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\\' && q != '`':
			l.pos += 2
			continue
		case c == q:
			l.pos++
			return l.src[start+1 : l.pos-1], nil
		}
		l.pos++
	}
	return "", fmt.Errorf("unclosed string at %d", start)
}

// skipBack returns the position of the last byte before the n bytes just
// read that is not a space.
func (l *lexer) skipBack(n int) int {
	p := l.pos - n - 1
	for p > 0 && strings.IndexByte(" \t\r\n", l.src[p]) >= 0 {
		p--
	}
	return p
}

// labelList reads "(a, b, c)" after by, on and the like; group_left and
// group_right may have none.
func (l *lexer) labelList() ([]string, error) {
	if l.peekByte() != '(' {
		return nil, nil
	}
	l.pos = l.skipSpace() + 1
	var names []string
	for {
		tok, err := l.next()
		if err != nil {
			return nil, err
		}
		switch {
		case tok.kind == tokIdent && len(names) > 0 && l.src[l.skipBack(len(tok.text))] != ',':
			return nil, fmt.Errorf("%s: no comma before it in a label list", tok.text)
		case tok.kind == tokIdent:
			names = append(names, tok.text)
		case tok.kind == tokEOF:
			return nil, fmt.Errorf("unclosed label list")
		case l.src[l.pos-1] == ')':
			return names, nil
		case l.src[l.pos-1] != ',':
			return nil, fmt.Errorf("unexpected %q in a label list", l.src[l.pos-1])
		}
	}
}

// matched is what a selector's matchers name.
type matched struct {
	name   string // the metric's name, if __name__="..." gives it
	labels []string
}

// matchers reads a selector's matchers, after its "{", through its "}".
func (l *lexer) matchers() (matched, error) {
	var m matched
	for {
		l.pos = l.skipSpace()
		if l.pos >= len(l.src) {
			return m, fmt.Errorf("unclosed {")
		}
		switch c := l.src[l.pos]; {
		case c == '}':
			l.pos++
			return m, nil
		case c == ',':
			l.pos++
			continue
		case !isIdentStart(c):
			return m, fmt.Errorf("unexpected %q in a selector (a quoted name?)", c)
		}
		tok, _ := l.next()
		l.pos = l.skipSpace()
		op := ""
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(l.src[l.pos:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return m, fmt.Errorf("label %s: no matcher operator", tok.text)
		}
		l.pos += len(op)
		l.pos = l.skipSpace()
		if l.pos >= len(l.src) || strings.IndexByte("\"'`", l.src[l.pos]) < 0 {
			return m, fmt.Errorf("label %s: the value is not a string", tok.text)
		}
		value, err := l.str()
		if err != nil {
			return m, err
		}
		if tok.text == "__name__" {
			if op != "=" {
				return m, fmt.Errorf("__name__%s: a name matched other than with =", op)
			}
			m.name = value
			continue
		}
		m.labels = append(m.labels, tok.text)
	}
}
