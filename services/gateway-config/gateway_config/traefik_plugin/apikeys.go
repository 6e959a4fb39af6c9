// Package apikeys is the front door's API key check, a Traefik middleware plugin
// (interpreted by Traefik's Yaegi, standard library only) that gateway-config
// configures per ModelService (gateway_config.keys.plugin_spec): no round trip per request.
//
// A request's key is `Authorization: Bearer <key>` or else `x-api-key: <key>`;
// its SHA-256 digest (hex) is looked up in the service's Allowed table and then in
// Denied (keys of other services), each rendered as a list of `<digest>:<key id>`:
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

// table maps each `<digest>:<key id>` entry's digest to its key id.
func table(entries []string) map[string]string {
	found := make(map[string]string, len(entries))
	for _, entry := range entries {
		if digest, id, ok := strings.Cut(entry, ":"); ok {
			found[digest] = id
		}
	}
	return found
}

// Keys checks one service's requests.
type Keys struct {
	next         http.Handler
	service      string
	allowed      map[string]string
	denied       map[string]string
	unauthorized []byte
	forbidden    []byte
}

// New builds the check of one ModelService from its table.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	counter.configure(config.CountsURL, config.CountsSeconds, config.CountsToken)
	return &Keys{
		next:         next,
		service:      config.Service,
		allowed:      table(config.Allowed),
		denied:       table(config.Denied),
		unauthorized: []byte(config.Unauthorized),
		forbidden:    []byte(config.Forbidden),
	}, nil
}

func presented(req *http.Request) string {
	authorization := req.Header.Get("Authorization")
	if len(authorization) > 7 && strings.EqualFold(authorization[:7], "bearer ") {
		if key := strings.TrimSpace(authorization[7:]); key != "" {
			return key
		}
	}
	return strings.TrimSpace(req.Header.Get("X-Api-Key"))
}

func (k *Keys) refuse(rw http.ResponseWriter, status int, body []byte) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	rw.Write(body)
}

func (k *Keys) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	key := presented(req)
	if key == "" {
		counter.add("", k.service, "missing")
		k.refuse(rw, http.StatusUnauthorized, k.unauthorized)
		return
	}
	sum := sha256.Sum256([]byte(key))
	digest := hex.EncodeToString(sum[:])
	if id, ok := k.allowed[digest]; ok {
		counter.add(id, k.service, "accepted")
		req.Header.Set(KeyIDHeader, id)
		k.next.ServeHTTP(rw, req)
		return
	}
	if id, ok := k.denied[digest]; ok {
		counter.add(id, k.service, "forbidden")
		k.refuse(rw, http.StatusForbidden, k.forbidden)
		return
	}
	counter.add("", k.service, "unknown")
	k.refuse(rw, http.StatusUnauthorized, k.unauthorized)
}

// counts is what every middleware of this plugin counted since the last report.
type counts struct {
	mu      sync.Mutex
	pending map[string]int64
	url     string
	token   string
	every   time.Duration
	started bool
}

var counter = &counts{pending: map[string]int64{}}

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

func (c *counts) add(keyID, service, result string) {
	c.mu.Lock()
	c.pending[keyID+"\n"+service+"\n"+result]++
	c.mu.Unlock()
}

func (c *counts) report() {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		c.mu.Lock()
		every := c.every
		c.mu.Unlock()
		time.Sleep(every)
		c.mu.Lock()
		batch, url, token := c.pending, c.url, c.token
		c.pending = map[string]int64{}
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if !send(client, url, token, batch) {
			c.mu.Lock()
			for name, n := range batch {
				c.pending[name] += n
			}
			c.mu.Unlock()
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
