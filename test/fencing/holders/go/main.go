// The Go fencing holder (test/fencing/README.md): takes a lock through the
// msync package and writes a Kubernetes object or a PostgreSQL row fenced by
// the lock's token with msync's fencing helpers, one JSON command per stdin
// line, one JSON reply per stdout line. It never checks whether it still
// holds the lock before a write: it is the process paused between its check
// and its write that fencing is for.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
)

type command struct {
	ID            int               `json:"id"`
	Op            string            `json:"op"`
	Address       string            `json:"address"`
	Name          string            `json:"name"`
	WaitTimeoutMs int64             `json:"waitTimeoutMs"`
	Server        string            `json:"server"`
	Token         string            `json:"token"`
	CAFile        string            `json:"caFile"`
	Namespace     string            `json:"namespace"`
	ConfigMap     string            `json:"configMap"`
	Lock          string            `json:"lock"`
	Data          map[string]string `json:"data"`
	DSN           string            `json:"dsn"`
	Table         string            `json:"table"`
	RowID         int               `json:"rowId"`
	Writer        string            `json:"writer"`
}

type reply map[string]any

var (
	held       = map[string]*msync.Lock{}
	kubeClient *http.Client
	kubeServer string
	kubeToken  string
	db         *sql.DB
)

func kubeRequest(ctx context.Context, method, path string, body any) (int, map[string]any, error) {
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, kubeServer+path, payload)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+kubeToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := kubeClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var object map[string]any
	if err := json.NewDecoder(res.Body).Decode(&object); err != nil && !errors.Is(err, io.EOF) {
		return res.StatusCode, nil, err
	}
	return res.StatusCode, object, nil
}

func tokenOf(name string) (int64, error) {
	lock, ok := held[name]
	if !ok {
		return 0, fmt.Errorf("lock %s was never taken by this holder", name)
	}
	return lock.Token, nil
}

func perform(ctx context.Context, c command) (reply, error) {
	switch c.Op {
	case "lock":
		client, err := msync.New(msync.WithAddress(c.Address))
		if err != nil {
			return nil, err
		}
		wait := 30 * time.Second
		if c.WaitTimeoutMs > 0 {
			wait = time.Duration(c.WaitTimeoutMs) * time.Millisecond
		}
		lock, err := client.Lock(ctx, c.Name, msync.WithWaitTimeout(wait))
		if err != nil {
			return nil, err
		}
		held[c.Name] = lock
		return reply{"ok": true, "token": lock.Token}, nil
	case "kubeConnect":
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s: no certificate", c.CAFile)
		}
		kubeClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		kubeServer, kubeToken = c.Server, c.Token
		return reply{"ok": true}, nil
	case "kubeWrite":
		// Read, change, stamp, write back: the usual read-modify-write of a controller.
		path := "/api/v1/namespaces/" + c.Namespace + "/configmaps"
		status, object, err := kubeRequest(ctx, http.MethodGet, path+"/"+c.ConfigMap, nil)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK && status != http.StatusNotFound {
			return reply{"ok": false, "status": status, "message": object["message"]}, nil
		}
		if status == http.StatusNotFound {
			object = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": c.ConfigMap}}
		}
		data, _ := object["data"].(map[string]any)
		if data == nil {
			data = map[string]any{}
		}
		for k, v := range c.Data {
			data[k] = v
		}
		object["data"] = data
		if c.Lock != "" {
			token, err := tokenOf(c.Lock)
			if err != nil {
				return nil, err
			}
			metadata := object["metadata"].(map[string]any)
			annotations := map[string]string{}
			if existing, ok := metadata["annotations"].(map[string]any); ok {
				for k, v := range existing {
					annotations[k], _ = v.(string)
				}
			}
			if annotations, err = msync.StampFence(annotations, c.Lock, token); err != nil {
				return nil, err
			}
			metadata["annotations"] = annotations
		}
		method, target := http.MethodPut, path+"/"+c.ConfigMap
		if status == http.StatusNotFound {
			method, target = http.MethodPost, path
		}
		status, answer, err := kubeRequest(ctx, method, target, object)
		if err != nil {
			return nil, err
		}
		if status == http.StatusOK || status == http.StatusCreated {
			return reply{"ok": true}, nil
		}
		return reply{"ok": false, "status": status, "message": answer["message"]}, nil
	case "pgConnect":
		var err error
		if db, err = sql.Open("pgx", c.DSN); err != nil {
			return nil, err
		}
		return reply{"ok": true}, db.PingContext(ctx)
	case "pgWrite":
		// One transaction: the fence first, then the guarded write.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback()
		if c.Lock != "" {
			token, err := tokenOf(c.Lock)
			if err != nil {
				return nil, err
			}
			if err := msync.Fence(ctx, tx, c.Lock, token); err != nil {
				var stale *msync.StaleFenceError
				if errors.As(err, &stale) {
					return reply{"ok": false, "code": msync.StaleFenceSQLState, "stale": errors.Is(err, msync.ErrStaleFence), "message": stale.Err.Error()}, nil
				}
				return nil, err
			}
		}
		query := "INSERT INTO " + c.Table + " (id, writer) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET writer = EXCLUDED.writer"
		if _, err := tx.ExecContext(ctx, query, c.RowID, c.Writer); err != nil {
			return nil, err
		}
		return reply{"ok": true}, tx.Commit()
	}
	return reply{"ok": false, "message": "unknown op " + c.Op}, nil
}

func main() {
	out := json.NewEncoder(os.Stdout)
	_ = out.Encode(reply{"event": "ready", "language": "go"})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "bad command:", err)
			os.Exit(2)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		r, err := perform(ctx, c)
		cancel()
		if err != nil {
			r = reply{"ok": false, "message": err.Error()}
		}
		r["id"] = c.ID
		_ = out.Encode(r)
	}
	if db != nil {
		_ = db.Close()
	}
	for _, lock := range held {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = lock.Unlock(ctx)
		cancel()
	}
}
