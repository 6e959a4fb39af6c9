// Command goproxy is the floor of a Go proxy hop for tools/bench/proxy_floor.py: the
// standard library's reverse proxy and nothing else (no router, no middleware).
//
//	goproxy LISTEN UPSTREAM [h2c]
//
// It serves HTTP/1.1 on LISTEN (and h2c too with a third argument) and relays every
// request to UPSTREAM, `http://host:port` (HTTP/1.1) or `h2c://host:port` (HTTP/2
// without TLS), flushing each write of the answer at once, as Traefik does for a stream.
package main

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: goproxy LISTEN UPSTREAM [h2c]")
	}
	upstream, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	var transport http.RoundTripper = http.DefaultTransport
	if upstream.Scheme == "h2c" {
		upstream.Scheme = "http"
		transport = &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.Transport = transport
	proxy.FlushInterval = -1
	var handler http.Handler = proxy
	if len(os.Args) > 3 && os.Args[3] == "h2c" {
		handler = h2c.NewHandler(proxy, &http2.Server{})
	}
	log.Fatal(http.ListenAndServe(os.Args[1], handler))
}
