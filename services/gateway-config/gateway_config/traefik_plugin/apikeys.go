// Package apikeys is the front door's API key check, a Traefik middleware plugin
// (interpreted by Traefik's Yaegi, standard library only) that gateway-config
// configures per ModelService (gateway_config.keys.plugin_spec): no round trip per request.
//
// A request's key is `Authorization: Bearer <key>` or else `x-api-key: <key>`;
// its SHA-256 digest is looked up in the service's table, built from Allowed (the keys
// scoped to the service) and Denied (every other key), each rendered as a list of
// `<digest (hex)>:<key id>`:
//   - allowed: X-Modelplane-Key-Id set to the key id, passed on (the route's header
//     filter then removes the key headers);
//   - denied: 403 with the Forbidden body;
//   - missing or unknown: 401 with the Unauthorized body.
//
// The bodies are rendered by gateway-config (the OpenAI error shape). Every answer is
// counted per (key id, service, result); every CountsSeconds the counts are POSTed as
// JSON to CountsURL (gateway-config's key server, which adds them to its Prometheus
// counter) with `Authorization: Bearer <CountsToken>`, which that server requires, and
// kept for the next try when that fails.
//
// Speed: Yaegi's cost is per interpreted statement and call, and at one request at a
// time each call runs cold (caches filled by other work since the last request), so the
// accepted path is a handful of statements: one map lookup by the raw digest, one atomic
// add to a counter made when the table was built, one header set. Nothing is formatted,
// concatenated or locked per request.
package apikeys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// KeyIDHeader carries the key id of an accepted request to the backend.
const KeyIDHeader = "X-Modelplane-Key-Id"

// Config is one ModelService's table, as gateway-config renders it.
type Config struct {
	Service       string   `json:"service,omitempty"`
	Allowed       []string `json:"allowed,omitempty"`
	Denied        []string `json:"denied,omitempty"`
	Unauthorized  string   `json:"unauthorized,omitempty"`
	Forbidden     string   `json:"forbidden,omitempty"`
	CountsURL     string   `json:"countsURL,omitempty"`
	CountsSeconds int      `json:"countsSeconds,omitempty"`
	CountsToken   string   `json:"countsToken,omitempty"`
}

// CreateConfig is the empty table (every request refused).
func CreateConfig() *Config {
	return &Config{}
}

// grant is one key's entry in a service's table: whether it may use the service, its
// key id and its counter of requests.
type grant struct {
	allowed bool
	id      string
	count   *int64
}

// table maps each `<digest>:<key id>` entry's raw digest (32 bytes as a string) to its grant.
func table(service string, allowed, denied []string) map[string]*grant {
	found := make(map[string]*grant, len(allowed)+len(denied))
	for n, entries := range [][]string{denied, allowed} {
		for _, entry := range entries {
			digest, id, ok := strings.Cut(entry, ":")
			raw, err := hex.DecodeString(digest)
			if !ok || err != nil || len(raw) != sha256.Size {
				continue
			}
			result := "forbidden"
			if n == 1 {
				result = "accepted"
			}
			found[string(raw)] = &grant{n == 1, id, counter.slot(id, service, result)}
		}
	}
	return found
}

// Keys checks one service's requests.
type Keys struct {
	next         http.Handler
	service      string
	grants       map[string]*grant
	missing      *int64
	unknown      *int64
	unauthorized []byte
	forbidden    []byte
}

// New builds the check of one ModelService from its table.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	counter.configure(config.CountsURL, config.CountsSeconds, config.CountsToken)
	return &Keys{
		next:         next,
		service:      config.Service,
		grants:       table(config.Service, config.Allowed, config.Denied),
		missing:      counter.slot("", config.Service, "missing"),
		unknown:      counter.slot("", config.Service, "unknown"),
		unauthorized: []byte(config.Unauthorized),
		forbidden:    []byte(config.Forbidden),
	}, nil
}

// ServeHTTP is the per-request path, kept to a few statements: the interpreter's cost is
// per statement, and a cold call of it is most of the check's latency.
func (k *Keys) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	key := req.Header.Get("Authorization")
	if len(key) > 7 && strings.EqualFold(key[:7], "bearer ") {
		key = strings.TrimSpace(key[7:])
	} else {
		key = ""
	}
	if key == "" {
		key = strings.TrimSpace(req.Header.Get("X-Api-Key"))
	}
	sum := sha256.Sum256([]byte(key))
	found := k.grants[string(sum[:])]
	if found != nil && found.allowed && key != "" {
		atomic.AddInt64(found.count, 1)
		req.Header[KeyIDHeader] = []string{found.id} // (a slice of its own: others may edit it)
		k.next.ServeHTTP(rw, req)
		return
	}
	k.refuse(rw, key, found)
}

func (k *Keys) refuse(rw http.ResponseWriter, key string, found *grant) {
	status, body := http.StatusUnauthorized, k.unauthorized
	switch {
	case key == "":
		atomic.AddInt64(k.missing, 1)
	case found == nil:
		atomic.AddInt64(k.unknown, 1)
	default:
		atomic.AddInt64(found.count, 1)
		status, body = http.StatusForbidden, k.forbidden
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	rw.Write(body)
}

// counts is what every middleware of this plugin counted since the last report: one
// counter per (key id, service, result), shared by every middleware instance (a
// reloaded configuration builds new ones) and taken to zero by each report.
type counts struct {
	mu      sync.Mutex
	slots   map[string]*int64
	url     string
	token   string
	every   time.Duration
	started bool
}

var counter = &counts{slots: map[string]*int64{}}

func (c *counts) configure(url string, seconds int, token string) {
	if seconds < 1 {
		seconds = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.url = url
	c.token = token
	c.every = time.Duration(seconds) * time.Second
	if !c.started && url != "" {
		c.started = true
		go c.report()
	}
}

// slot is the counter of (key id, service, result), made on first use.
func (c *counts) slot(keyID, service, result string) *int64 {
	name := keyID + "\n" + service + "\n" + result
	c.mu.Lock()
	defer c.mu.Unlock()
	found, ok := c.slots[name]
	if !ok {
		found = new(int64)
		c.slots[name] = found
	}
	return found
}

// take is every counter's count since the last take (the non-zero ones), each set to zero.
func (c *counts) take() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch := map[string]int64{}
	for name, slot := range c.slots {
		if n := atomic.SwapInt64(slot, 0); n != 0 {
			batch[name] = n
		}
	}
	return batch
}

// giveBack adds a batch that could not be reported back to its counters.
func (c *counts) giveBack(batch map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, n := range batch {
		atomic.AddInt64(c.slots[name], n)
	}
}

func (c *counts) report() {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		c.mu.Lock()
		every, url, token := c.every, c.url, c.token
		c.mu.Unlock()
		time.Sleep(every)
		batch := c.take()
		if len(batch) == 0 {
			continue
		}
		if !send(client, url, token, batch) {
			c.giveBack(batch)
		}
	}
}

func send(client *http.Client, url, token string, batch map[string]int64) bool {
	rows := make([]map[string]interface{}, 0, len(batch))
	for name, n := range batch {
		parts := strings.SplitN(name, "\n", 3)
		rows = append(rows, map[string]interface{}{
			"key_id": parts[0], "service": parts[1], "result": parts[2], "count": n,
		})
	}
	body, err := json.Marshal(rows)
	if err != nil {
		return false
	}
	request, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	request.Header.Set("Content-Type", "application/json")
	request.Header.Set("Authorization", "Bearer "+token)
	answer, err := client.Do(request)
	if err != nil {
		return false
	}
	answer.Body.Close()
	return answer.StatusCode == http.StatusNoContent
}
