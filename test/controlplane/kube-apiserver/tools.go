//go:build tools

// Package tools keeps k8s.io/kubernetes in go.mod so that `go mod tidy`
// does not drop it. build.sh runs:
//
//	go build -o BIN/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
