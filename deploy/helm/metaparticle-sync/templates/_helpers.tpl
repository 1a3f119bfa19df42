{{/* The image, repository:tag; the tag defaults to the chart's appVersion. */}}
{{- define "msync.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Labels on every object, as the kustomize base sets part-of on its own. */}}
{{- define "msync.labels" -}}
app.kubernetes.io/part-of: metaparticle-sync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The injector's pods: its Deployment's selector, its Service's, and the webhook's objectSelector exclude them. */}}
{{- define "msync.injectorSelector" -}}
app.kubernetes.io/name: metaparticle-sync-injector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The webhook's serving certificate: a Secret given, or one cert-manager issues. */}}
{{- define "msync.tlsSource" -}}
{{- $source := .Values.injector.tls.source -}}
{{- if not (has $source (list "secret" "cert-manager")) -}}
{{- fail (printf "injector.tls.source must be secret or cert-manager, got %q" $source) -}}
{{- end -}}
{{- if and (eq $source "secret") (not .Values.injector.tls.caBundle) -}}
{{- fail "injector.tls.caBundle is required with injector.tls.source=secret: the CA certificate (PEM, base64-encoded) that signed the Secret's tls.crt, so that the API server trusts the webhook" -}}
{{- end -}}
{{- $source -}}
{{- end -}}
