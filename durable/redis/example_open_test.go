package redis_test

import (
	"log"

	"github.com/cairn-dev/cairn/durable/redis"
)

// A store on a Redis Cluster over TLS, from three of its nodes, with the
// authority that signs the servers' certificates and the client's own
// certificate (for servers with tls-auth-clients yes). (This example needs
// a cluster, so it is compiled but not run.)
func ExampleOpen() {
	// snippet:open
	tlsConfig, err := redis.TLSFiles{
		CA:   "/etc/cairn/redis-ca.pem",
		Cert: "/etc/cairn/client.pem", Key: "/etc/cairn/client-key.pem", // if the servers ask for one
	}.Config()
	if err != nil {
		log.Fatal(err)
	}
	store, err := redis.Open("rediss+cluster://cairn-worker:s3cret@10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000",
		redis.WithTLS(tlsConfig), redis.WithPrefix("cairn"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// end snippet:open
}
