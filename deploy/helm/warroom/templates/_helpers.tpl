{{/* The chart's name, or nameOverride. */}}
{{- define "warroom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: <release>-<chart>, or just <release> when it already says warroom. */}}
{{- define "warroom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The release's pods: the bots (component "bot") and the migration Job's (component "migrations"). */}}
{{- define "warroom.instanceLabels" -}}
app.kubernetes.io/name: {{ include "warroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The bots only: the Deployment's, Service's and PodDisruptionBudget's selector. */}}
{{- define "warroom.selectorLabels" -}}
{{ include "warroom.instanceLabels" . }}
app.kubernetes.io/component: bot
{{- end -}}

{{- define "warroom.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "warroom.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "warroom.labels" -}}
{{ include "warroom.commonLabels" . }}
app.kubernetes.io/component: bot
{{- end -}}

{{- define "warroom.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding the tokens and the database URL: secrets.existingSecret, else the full name. */}}
{{- define "warroom.secretName" -}}
{{- default (include "warroom.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "warroom.mode" -}}
{{- if not (has .Values.mode (list "socket" "http")) -}}
{{- fail (printf "mode must be \"socket\" or \"http\", not %q" .Values.mode) -}}
{{- end -}}
{{- .Values.mode -}}
{{- end -}}

{{/* Whether the status page has a port of its own. */}}
{{- define "warroom.statusPort" -}}
{{- if and .Values.statusPage.enabled (gt (int .Values.statusPage.port) 0) -}}
{{- int .Values.statusPage.port -}}
{{- end -}}
{{- end -}}

{{/* A variable from the Secret. Arguments: root context, variable name, key, optional. */}}
{{- define "warroom.secretEnv" -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "warroom.secretName" (index . 0) }}
      key: {{ index . 2 }}
      optional: {{ index . 3 }}
{{- end -}}

{{/* The environment both the bot and the migration Job get: the database and plain settings. */}}
{{- define "warroom.commonEnv" -}}
{{ include "warroom.secretEnv" (list . "DATABASE_URL" .Values.secrets.keys.databaseUrl false) }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "warroom.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.serviceAccount.name }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
