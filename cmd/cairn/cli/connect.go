package cli

import (
	"crypto/tls"
	"flag"
	"strings"

	"github.com/cairn-dev/cairn/durable/redis"
)

// The environment variables of the connection flags; a flag given on the
// command line wins over its variable.
const (
	EnvRedisPrefix   = "CAIRN_REDIS_PREFIX"    // --prefix: the store's key prefix
	EnvTLSCA         = "CAIRN_TLS_CA"          // --tls-ca: the CA file that signs the servers' certificates
	EnvTLSCert       = "CAIRN_TLS_CERT"        // --tls-cert: the client certificate file
	EnvTLSKey        = "CAIRN_TLS_KEY"         // --tls-key: the client certificate's key file
	EnvTLSServerName = "CAIRN_TLS_SERVER_NAME" // --tls-server-name: the name in the servers' certificates
)

// connection are the flags that say how to reach Redis.
type connection struct {
	redis, prefix                         string
	tlsCA, tlsCert, tlsKey, tlsServerName string
}

// takesValue says whether a global flag takes a value as the next
// argument, so that leadingFlags keeps it with its flag.
func takesValue(name string) bool {
	switch name {
	case "redis", "prefix", "tls-ca", "tls-cert", "tls-key", "tls-server-name":
		return true
	}
	return false
}

// tlsFlags adds the TLS flags.
func tlsFlags(fs *flag.FlagSet, c *connection) {
	fs.StringVar(&c.tlsCA, "tls-ca", "", "a PEM `FILE` of the CAs that sign the Redis servers' certificates; default $"+EnvTLSCA+", else the system's roots")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "a PEM `FILE` of the client certificate, for servers that ask for one (with --tls-key); default $"+EnvTLSCert)
	fs.StringVar(&c.tlsKey, "tls-key", "", "a PEM `FILE` of the client certificate's private key; default $"+EnvTLSKey)
	fs.StringVar(&c.tlsServerName, "tls-server-name", "", "the `NAME` the servers' certificates must hold; default $"+EnvTLSServerName+", else the host dialed")
}

// storeFlags adds the flags of a command that opens the store: the URL,
// the key prefix and TLS. redisUsage describes --redis.
func storeFlags(fs *flag.FlagSet, c *connection, redisUsage string) {
	fs.StringVar(&c.redis, "redis", "", redisUsage)
	fs.StringVar(&c.prefix, "prefix", "", "the store's key `PREFIX`; default $"+EnvRedisPrefix+", else "+redis.DefaultPrefix)
	tlsFlags(fs, c)
}

// redisUsage is --redis's usage of most commands.
const redisUsage = "the Redis `URL`: redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel://, unix://; default $" + EnvRedisURL

// flagOrEnv returns the flag's value, or the variable's if the flag is not
// given.
func (app App) flagOrEnv(value, env string) string {
	if value != "" {
		return value
	}
	return app.getenv(env)
}

// redisURL returns the Redis URL, from --redis or the environment.
func (app App) redisURL(c connection) string { return app.flagOrEnv(c.redis, EnvRedisURL) }

// tlsConfig returns the TLS settings that the flags or the environment
// give, or nil if they give none (a rediss URL then trusts the system's
// roots). An error, a usage error, names the flag and the file.
func (app App) tlsConfig(c connection) (*tls.Config, error) {
	files := redis.TLSFiles{
		CA:         app.flagOrEnv(c.tlsCA, EnvTLSCA),
		Cert:       app.flagOrEnv(c.tlsCert, EnvTLSCert),
		Key:        app.flagOrEnv(c.tlsKey, EnvTLSKey),
		ServerName: app.flagOrEnv(c.tlsServerName, EnvTLSServerName),
	}
	if files == (redis.TLSFiles{}) {
		return nil, nil
	}
	cfg, err := files.Config()
	if err != nil {
		return nil, usageError("%v", err)
	}
	return cfg, nil
}

// connectHint says what to do about an error in reaching Redis, when it
// is one a flag fixes; "" otherwise. tlsConfig is the connection's TLS
// settings, nil if none or unknown.
func connectHint(err error, tlsConfig *tls.Config) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate required"):
		return " (the server asks for a client certificate: give --tls-cert and --tls-key)"
	case strings.Contains(msg, "connection reset by peer") && tlsConfig != nil && len(tlsConfig.Certificates) == 0:
		// TLS 1.3 refuses a missing client certificate after the
		// handshake: the client's first write can meet the reset before
		// its read meets the refusal.
		return " (the server closed the connection: if it asks for a client certificate, give --tls-cert and --tls-key)"
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return " (give the CA that signs the server's certificate with --tls-ca)"
	case strings.Contains(msg, "certificate is valid for"):
		return " (give the name the server's certificate holds with --tls-server-name)"
	case strings.Contains(msg, "MOVED"):
		return " (it is a Redis Cluster: use a redis+cluster:// URL)"
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH"):
		return " (give the user and password in the URL: redis://user:password@host:port)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return " (the server does not speak TLS: use redis:// rather than rediss://)"
	}
	return ""
}
