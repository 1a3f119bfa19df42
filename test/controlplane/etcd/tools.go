//go:build tools

// Package tools keeps the etcd server and etcdctl in go.mod so that
// `go mod tidy` does not drop them. build.sh runs:
//
//	go build -o BIN/etcd go.etcd.io/etcd/server/v3
//	go build -o BIN/etcdctl go.etcd.io/etcd/etcdctl/v3
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
