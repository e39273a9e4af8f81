{{/* The operator's name: keyless-operator for a release named keyless, as in config/. */}}
{{- define "keyless.operator" -}}
{{ .Release.Name }}-operator
{{- end -}}

{{/* What selects the operator's pods: config/'s, so moving a kustomize install to the chart never changes the immutable selector. */}}
{{- define "keyless.selectorLabels" -}}
app.kubernetes.io/name: keyless
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every object: config/'s, and Helm's own. */}}
{{- define "keyless.labels" -}}
app.kubernetes.io/name: keyless
app.kubernetes.io/component: {{ .component | default "operator" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "keyless.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/*
The operator's settings as environment variables, in name order; a value left empty or null is not set, so the
operator's own default applies. 0 is a value (KEYLESS_AZURE_MAX_RETRIES, KEYLESS_VERIFY_GRACE_SECONDS).
*/}}
{{- define "keyless.settings" -}}
{{- $v := .Values -}}
{{- $settings := dict
  "KEYLESS_LOG_LEVEL" $v.logLevel
  "KEYLESS_WORKERS" $v.workers
  "KEYLESS_RESYNC_SECONDS" $v.resyncSeconds
  "KEYLESS_CLUSTER_NAME" $v.clusterName
  "KEYLESS_CLOUD_WRITES_PER_SECOND" $v.cloudBudget.writesPerSecond
  "KEYLESS_CLOUD_WRITE_BURST" $v.cloudBudget.writeBurst
  "KEYLESS_CLOUD_READS_PER_SECOND" $v.cloudBudget.readsPerSecond
  "KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS" $v.timeouts.cloudCallSeconds
  "KEYLESS_RECONCILE_TIMEOUT_SECONDS" $v.timeouts.reconcileSeconds
  "KEYLESS_VERIFY_GRACE_SECONDS" $v.verification.graceSeconds
  "AWS_ENDPOINT_URL" $v.aws.endpoints.default
  "AWS_ENDPOINT_URL_IAM" $v.aws.endpoints.iam
  "AWS_ENDPOINT_URL_EKS" $v.aws.endpoints.eks
  "AWS_ENDPOINT_URL_STS" $v.aws.endpoints.sts
  "AWS_ENDPOINT_URL_EKS_AUTH" $v.aws.endpoints.eksAuth
  "KEYLESS_AWS_MAX_ATTEMPTS" $v.aws.maxAttempts
  "KEYLESS_GCP_ENDPOINT" $v.gcp.endpoint
  "KEYLESS_GCP_ACCESS_TOKEN" $v.gcp.accessToken
  "KEYLESS_AZURE_ENDPOINT" $v.azure.endpoint
  "KEYLESS_AZURE_AUTHORITY_HOST" $v.azure.authorityHost
  "KEYLESS_AZURE_CREDENTIAL" $v.azure.credential
  "KEYLESS_AZURE_MAX_RETRIES" $v.azure.maxRetries
  "NODE_OPTIONS" $v.nodeOptions
-}}
{{- if not $v.leaderElection.enabled }}
{{- $_ := set $settings "KEYLESS_LEADER_ELECTION" "false" }}
{{- end }}
{{- range $name, $value := $settings }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}
