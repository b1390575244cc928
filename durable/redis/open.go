package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Open returns a store on a new client for rawURL, which names one of
// these deployments:
//
//	redis://[user:password@]host[:port][/db]             one server
//	unix://[user:password@]/path/to/redis.sock[?db=db]   one server, on a Unix socket
//	redis+cluster://[user:password@]host:port,host:port  a Redis Cluster, from its seed nodes
//	redis+sentinel://[user:password@]host:port,host:port/master[/db]
//	                                                     the master that the Sentinels at
//	                                                     these addresses name "master"
//
// rediss://, rediss+cluster:// and rediss+sentinel:// are the same over
// TLS. A port left out is 6379 (26379 for a Sentinel); a host left out of
// a redis:// URL is localhost. user and password are those of the Redis
// servers that hold the data: the ACL user (see ACLRules), or only a
// password for requirepass. The Sentinels' own, if they need any, go in
// the query as sentinel_username and sentinel_password. The other query
// parameters are go-redis's options, as its ParseURL, ParseClusterURL and
// ParseFailoverURL read them (dial_timeout=3s, pool_size=20, ...); a
// cluster or sentinel URL may also name its addresses as go-redis's own
// URLs do, one in the host and more in addr=host:port parameters.
//
// A TLS URL checks the server's certificate against the system's roots
// and the host of each address dialed. WithTLS gives the authorities to
// trust instead, a client certificate, a server name; it applies to every
// form and needs a TLS scheme.
//
// A URL that cannot be read gives an error that says what is wrong with
// it, its password hidden. Open does not connect: a wrong address or
// password shows in the first call. Close closes the client.
func Open(rawURL string, opts ...Option) (*Store, error) {
	var set Store // what the options say, for WithTLS
	for _, opt := range opts {
		opt(&set)
	}
	client, err := NewClient(rawURL, set.dial.tls)
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	s := New(client, opts...)
	s.owned = true
	return s, nil
}

// WithTLS makes Open's client use a copy of config for TLS: the
// authorities it trusts (RootCAs; nil: the system's), the certificate it
// shows (Certificates), the name the server's certificate must hold
// (ServerName; "": the host of each address dialed). TLSFiles.Config
// makes one from files. The URL's scheme must be a TLS one (rediss,
// rediss+cluster, rediss+sentinel). New ignores it: a client given to New
// has its own settings.
func WithTLS(config *tls.Config) Option {
	return func(s *Store) { s.dial.tls = config }
}

// dialSettings are the options that only Open uses: those of its client.
type dialSettings struct {
	tls *tls.Config
}

// TLSFiles names the PEM files of a TLS connection to Redis. Empty fields
// are left out.
type TLSFiles struct {
	// CA is a file of the certificates of the authorities that sign the
	// servers' certificates; "" trusts the system's roots.
	CA string
	// Cert and Key are the files of the client's certificate and its
	// private key, for servers that ask for one (tls-auth-clients yes);
	// both or neither.
	Cert, Key string
	// ServerName is the name the servers' certificates must hold; ""
	// means the host of each address dialed.
	ServerName string
}

// Config reads the files and returns a TLS configuration for WithTLS, for
// TLS 1.2 or newer. An error names the file that cannot be read or holds
// no usable certificate or key.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		data, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", f.CA)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s and key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case f.Cert != "":
		return nil, fmt.Errorf("TLS client certificate %s without its key: give both or neither", f.Cert)
	case f.Key != "":
		return nil, fmt.Errorf("TLS client key %s without its certificate: give both or neither", f.Key)
	}
	return cfg, nil
}

// NewClient returns the client that Open makes for rawURL (see Open for
// the forms it takes), with tlsConfig as WithTLS gives it (nil: the URL's
// own), for a program that shares one client between several stores
// (New). The caller closes it.
func NewClient(rawURL string, tlsConfig *tls.Config) (goredis.UniversalClient, error) {
	if rawURL == "" {
		return nil, errors.New("empty Redis URL")
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("Redis URL %q has no scheme: want redis://host:port, rediss://, redis+cluster://, redis+sentinel:// or unix://",
			redact(rawURL))
	}
	scheme = strings.ToLower(scheme)
	secure := strings.HasPrefix(scheme, "rediss")
	if tlsConfig != nil && !secure {
		return nil, fmt.Errorf("TLS settings for a %s:// URL, which does not use TLS: use rediss://, rediss+cluster:// or rediss+sentinel://", scheme)
	}
	switch scheme {
	case "redis", "rediss", "unix":
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			return nil, urlError(scheme, rawURL, err)
		}
		o.TLSConfig = mergeTLS(o.TLSConfig, tlsConfig)
		return goredis.NewClient(o), nil
	case "redis+cluster", "rediss+cluster":
		m, err := parseMulti(scheme, rest, "6379")
		if err != nil {
			return nil, err
		}
		if strings.Trim(m.path, "/") != "" {
			return nil, fmt.Errorf("%s URL: path %q: a Redis Cluster has only database 0: give no path", scheme, m.path)
		}
		o, err := goredis.ParseClusterURL(m.goredisURL(secure))
		if err != nil {
			return nil, urlError(scheme, rawURL, err)
		}
		o.Username, o.Password = m.user, m.password
		o.TLSConfig = mergeTLS(o.TLSConfig, tlsConfig)
		return goredis.NewClusterClient(o), nil
	case "redis+sentinel", "rediss+sentinel":
		return newFailoverClient(scheme, rest, rawURL, secure, tlsConfig)
	}
	return nil, fmt.Errorf("Redis URL: unknown scheme %q: want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel, rediss+sentinel or unix",
		scheme)
}

// newFailoverClient makes the client of a sentinel URL.
func newFailoverClient(scheme, rest, rawURL string, secure bool, tlsConfig *tls.Config) (goredis.UniversalClient, error) {
	m, err := parseMulti(scheme, rest, "26379")
	if err != nil {
		return nil, err
	}
	sentinelUser, sentinelPassword := m.query.Get("sentinel_username"), m.query.Get("sentinel_password")
	m.query.Del("sentinel_username")
	m.query.Del("sentinel_password")
	path := strings.FieldsFunc(m.path, func(r rune) bool { return r == '/' })
	if len(path) > 0 {
		if m.query.Has("master_name") {
			return nil, fmt.Errorf("%s URL: the master's name is given twice, in the path and in master_name", scheme)
		}
		name, err := url.PathUnescape(path[0])
		if err != nil {
			return nil, fmt.Errorf("%s URL: master name %q: %v", scheme, path[0], err)
		}
		m.query.Set("master_name", name)
		path = path[1:]
	}
	if m.query.Get("master_name") == "" {
		return nil, fmt.Errorf("%s URL names no master: want %s://host:port,host:port/master-name", scheme, scheme)
	}
	if len(path) > 1 {
		return nil, fmt.Errorf("%s URL: path %q: want /master-name or /master-name/db", scheme, m.path)
	}
	m.path = "/" + strings.Join(path, "")
	o, err := goredis.ParseFailoverURL(m.goredisURL(secure))
	if err != nil {
		return nil, urlError(scheme, rawURL, err)
	}
	if m.user != "" || m.password != "" {
		o.Username, o.Password = m.user, m.password
	}
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPassword
	o.TLSConfig = mergeTLS(o.TLSConfig, tlsConfig)
	return goredis.NewFailoverClient(o), nil
}

// multiURL is a URL with several addresses, read apart.
type multiURL struct {
	user, password string
	addrs          []string
	path           string
	query          url.Values
}

// parseMulti reads what follows "scheme://" in a URL of several
// addresses: [user:password@]host[:port],host[:port]...[/path][?query].
func parseMulti(scheme, rest, defaultPort string) (multiURL, error) {
	var m multiURL
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		u, err := url.Parse("redis://" + authority[:at] + "@localhost")
		if err != nil {
			return m, fmt.Errorf("%s URL: user and password: %v", scheme, errors.Unwrap(err))
		}
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
		authority = authority[at+1:]
	}
	if authority == "" {
		return m, fmt.Errorf("%s URL names no address: want %s://host:port,host:port...", scheme, scheme)
	}
	for _, addr := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			// No port (or a bare IPv6 address in brackets): the default.
			host, port = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), defaultPort
		}
		if n, err := strconv.Atoi(port); host == "" || strings.ContainsAny(host, "[]/ ") || err != nil || n < 1 || n > 65535 {
			return m, fmt.Errorf("%s URL: address %q: want host:port", scheme, addr)
		}
		m.addrs = append(m.addrs, net.JoinHostPort(host, port))
	}
	path, rawQuery, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return m, fmt.Errorf("%s URL: query: %v", scheme, err)
	}
	m.path, m.query = path, q
	return m, nil
}

// goredisURL returns m as go-redis's ParseClusterURL and ParseFailoverURL
// read it, without the user and password: the first address in the host,
// the others in addr parameters.
func (m multiURL) goredisURL(secure bool) string {
	q := url.Values{}
	for k, v := range m.query {
		q[k] = v
	}
	q["addr"] = append(m.addrs[1:len(m.addrs):len(m.addrs)], q["addr"]...)
	u := url.URL{Scheme: "redis", Host: m.addrs[0], Path: m.path, RawQuery: q.Encode()}
	if secure {
		u.Scheme = "rediss"
	}
	return u.String()
}

// mergeTLS returns the TLS configuration of a client: nil without TLS;
// given, a copy of it; else the URL's. Its ServerName is the given one:
// go-redis sets the first address's host, which would not be the name of
// the other servers of a cluster or of a Sentinel's master, and without
// one each connection checks the host it dials. The URL's skip_verify
// stands.
func mergeTLS(fromURL, given *tls.Config) *tls.Config {
	if fromURL == nil {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if given != nil {
		cfg = given.Clone()
	}
	if fromURL.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// urlError rewords go-redis's error on a URL: without the URL in it, whose
// password it would show.
func urlError(scheme, rawURL string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	return fmt.Errorf("%s URL %s: %s", scheme, redact(rawURL), msg)
}

// redact hides the password of a URL.
func redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return rawURL
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return rawURL
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
