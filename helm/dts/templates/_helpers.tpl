{{/* Names, labels and the pieces every dts container shares. */}}

{{- define "dts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dts.fullname" -}}
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

{{/* A component's resource name: <fullname>-<component>, within 63 characters. */}}
{{- define "dts.componentName" -}}
{{- printf "%s-%s" (include "dts.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dts.labels" -}}
helm.sh/chart: {{ include "dts.chart" . }}
{{ include "dts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dts
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; args: root, component, and group for a worker group. */}}
{{- define "dts.componentSelectorLabels" -}}
{{ include "dts.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .group }}
dts/worker-group: {{ . }}
{{- end }}
{{- end -}}

{{- define "dts.componentLabels" -}}
{{ include "dts.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .group }}
dts/worker-group: {{ . }}
{{- end }}
{{- end -}}

{{- define "dts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dts.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "dts.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "dts.fullname" .) -}}
{{- end -}}

{{- define "dts.configMapName" -}}
{{- include "dts.fullname" . -}}
{{- end -}}

{{/* The hook copies of the ConfigMap and Secret the migrations Job reads. */}}
{{- define "dts.migrationsConfigName" -}}
{{- include "dts.componentName" (dict "root" . "component" "migrations") -}}
{{- end -}}

{{- define "dts.webServiceName" -}}
{{- include "dts.componentName" (dict "root" . "component" "web") -}}
{{- end -}}

{{/* Every queue of every worker group, sorted, without repeats: DTS_QUEUES. */}}
{{- define "dts.queues" -}}
{{- $queues := list -}}
{{- range $name, $group := .Values.workers.groups -}}
{{- if $group -}}
{{- $queues = concat $queues $group.queues -}}
{{- end -}}
{{- end -}}
{{- $queues | uniq | sortAlpha | join "," -}}
{{- end -}}

{{/* `override` over `base`, map by map: a key `override` has replaces base's value (also when
it is 0, false or empty, which mergeOverwrite would skip); maps present in both merge. YAML. */}}
{{- define "dts.deepMerge" -}}
{{- $merged := deepCopy .base -}}
{{- range $key, $value := .override -}}
{{- $current := get $merged $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $merged $key (include "dts.deepMerge" (dict "base" $current "override" $value) | fromYaml) -}}
{{- else -}}
{{- $_ := set $merged $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* A worker group's values: workers.defaults overridden by the group's own. A key the group
sets replaces the default's value (resources, nodeSelector, affinity: a whole Kubernetes object),
except the chart's own settings maps (autoscaling, probes, pdb), merged key by key. Args: root, name. */}}
{{- define "dts.workerGroup" -}}
{{- $group := get .root.Values.workers.groups .name -}}
{{- $merged := deepCopy .root.Values.workers.defaults -}}
{{- range $key, $value := $group -}}
{{- if has $key (list "autoscaling" "livenessProbe" "startupProbe" "pdb") -}}
{{- $_ := set $merged $key (include "dts.deepMerge" (dict "base" (get $merged $key) "override" $value) | fromYaml) -}}
{{- else -}}
{{- $_ := set $merged $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* Whether the relay runs: it publishes the outbox, which exists only with events on. */}}
{{- define "dts.relayEnabled" -}}
{{- if and .Values.relay.enabled .Values.config.eventsEnabled -}}true{{- end -}}
{{- end -}}

{{/* Whether Elasticsearch is configured: its URL is in the values, or the existing Secret holds
it (the chart cannot read that Secret: externalElasticsearch.inExistingSecret says so). */}}
{{- define "dts.elasticsearchConfigured" -}}
{{- if or .Values.externalElasticsearch.url (and .Values.secrets.existingSecret .Values.externalElasticsearch.inExistingSecret) -}}true{{- end -}}
{{- end -}}

{{/* Whether the log indexer runs: it follows the events topic (events on) into Elasticsearch
(configured). Without Elasticsearch, log search reads PostgreSQL and there is nothing to index. */}}
{{- define "dts.indexerEnabled" -}}
{{- if and .Values.indexer.enabled .Values.config.eventsEnabled (include "dts.elasticsearchConfigured" .) -}}true{{- end -}}
{{- end -}}

{{/* Refuses values that are each valid alone but not together; called by the ConfigMap. */}}
{{- define "dts.validate" -}}
{{- $secretValues := dict "secrets.djangoSecretKey" .Values.secrets.djangoSecretKey "externalDatabase.url" .Values.externalDatabase.url "externalRedis.brokerUrl" .Values.externalRedis.brokerUrl "externalRedis.cacheUrl" .Values.externalRedis.cacheUrl "externalRedis.liveUrl" .Values.externalRedis.liveUrl -}}
{{- if .Values.secrets.existingSecret -}}
{{- range $name, $value := merge (dict "externalElasticsearch.url" $.Values.externalElasticsearch.url "secrets.djangoSecretKeyFallbacks" (join "," $.Values.secrets.djangoSecretKeyFallbacks)) $secretValues -}}
{{- if $value -}}
{{- fail (printf "%s is set, but secrets.existingSecret %q holds the secrets: put it there and leave %s empty" $name $.Values.secrets.existingSecret $name) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- range $name, $value := $secretValues -}}
{{- if not $value -}}
{{- fail (printf "%s is required (or name a Secret holding it in secrets.existingSecret)" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.externalElasticsearch.inExistingSecret (not .Values.secrets.existingSecret) -}}
{{- fail "externalElasticsearch.inExistingSecret is true, but secrets.existingSecret is empty: set externalElasticsearch.url instead" -}}
{{- end -}}
{{- if and .Values.config.eventsEnabled (not .Values.externalKafka.bootstrapServers) -}}
{{- fail "externalKafka.bootstrapServers is required while config.eventsEnabled is true" -}}
{{- end -}}
{{- if not (has "default" (splitList "," (include "dts.queues" .))) -}}
{{- fail "workers.groups: some group must consume the queue default (DTS_QUEUES must include it)" -}}
{{- end -}}
{{- range $name, $group := .Values.workers.groups -}}
{{- if $group -}}
{{- $merged := include "dts.workerGroup" (dict "root" $ "name" $name) | fromYaml -}}
{{- if and $merged.autoscaling.keda.enabled $merged.autoscaling.hpa.enabled -}}
{{- fail (printf "workers.groups.%s: autoscaling.keda and autoscaling.hpa cannot both be enabled" $name) -}}
{{- end -}}
{{- if and $merged.autoscaling.keda.enabled (not $.Values.workers.keda.redis.address) -}}
{{- fail (printf "workers.keda.redis.address is required: group %s scales with KEDA" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* DJANGO_ALLOWED_HOSTS: the configured hosts, the ingress hosts, the web Service's names. */}}
{{- define "dts.allowedHosts" -}}
{{- $service := include "dts.webServiceName" . -}}
{{- $hosts := concat .Values.config.allowedHosts (list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace)) -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts -}}
{{- $hosts = append $hosts .host -}}
{{- end -}}
{{- end -}}
{{- $hosts | uniq | join "," -}}
{{- end -}}

{{- define "dts.csrfTrustedOrigins" -}}
{{- $origins := .Values.config.csrfTrustedOrigins -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.tls -}}
{{- range .hosts -}}
{{- $origins = append $origins (printf "https://%s" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $origins | uniq | join "," -}}
{{- end -}}

{{/* The ConfigMap's data; also rendered as the migrations hook's copy. */}}
{{- define "dts.configData" -}}
DJANGO_SETTINGS_MODULE: config.settings.production
DJANGO_ALLOWED_HOSTS: {{ include "dts.allowedHosts" . | quote }}
DJANGO_CSRF_TRUSTED_ORIGINS: {{ include "dts.csrfTrustedOrigins" . | quote }}
DJANGO_SECURE_SSL_REDIRECT: {{ .Values.config.sslRedirect | ternary "true" "false" | quote }}
DTS_TRUSTED_PROXIES: {{ int .Values.config.trustedProxies | quote }}
DTS_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
DTS_LOG_FORMAT: {{ .Values.config.logFormat | quote }}
DTS_EVENTS_ENABLED: {{ .Values.config.eventsEnabled | ternary "true" "false" | quote }}
DTS_QUEUES: {{ include "dts.queues" . | quote }}
DTS_TASK_MODULES: {{ join "," .Values.config.taskModules | quote }}
KAFKA_BOOTSTRAP_SERVERS: {{ .Values.externalKafka.bootstrapServers | quote }}
DTS_HEARTBEAT_FILE: {{ .Values.heartbeat.file | quote }}
DTS_HEARTBEAT_MAX_AGE: {{ int .Values.heartbeat.maxAgeSeconds | quote }}
DTS_WEB_PORT: {{ int .Values.web.port | quote }}
DTS_WEB_WORKERS: {{ int .Values.web.workers | quote }}
DTS_RELAY_METRICS_PORT: {{ int .Values.relay.metricsPort | quote }}
DTS_RELAY_METRICS_ADDRESS: "0.0.0.0"
DTS_WORKER_METRICS_PORT: {{ int .Values.workers.metricsPort | quote }}
DTS_WORKER_METRICS_ADDRESS: "0.0.0.0"
DTS_SCHEDULER_METRICS_PORT: {{ int .Values.scheduler.metricsPort | quote }}
DTS_SCHEDULER_METRICS_ADDRESS: "0.0.0.0"
DTS_INDEXER_METRICS_PORT: {{ int .Values.indexer.metricsPort | quote }}
DTS_INDEXER_METRICS_ADDRESS: "0.0.0.0"
{{- range $name, $value := .Values.config.extra }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The Secret's data (base64), when the chart makes it; also the migrations hook's copy. */}}
{{- define "dts.secretData" -}}
DJANGO_SECRET_KEY: {{ .Values.secrets.djangoSecretKey | b64enc | quote }}
DATABASE_URL: {{ .Values.externalDatabase.url | b64enc | quote }}
CELERY_BROKER_URL: {{ .Values.externalRedis.brokerUrl | b64enc | quote }}
DTS_CACHE_URL: {{ .Values.externalRedis.cacheUrl | b64enc | quote }}
DTS_LIVE_REDIS_URL: {{ .Values.externalRedis.liveUrl | b64enc | quote }}
{{- with .Values.secrets.djangoSecretKeyFallbacks }}
DJANGO_SECRET_KEY_FALLBACKS: {{ join "," . | b64enc | quote }}
{{- end }}
{{- with .Values.externalElasticsearch.url }}
ELASTICSEARCH_URL: {{ . | b64enc | quote }}
{{- end }}
{{- end -}}

{{/* The pod annotation that rolls pods when the settings or secrets change. */}}
{{- define "dts.checksumAnnotations" -}}
checksum/config: {{ include "dts.configData" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include "dts.secretData" . | sha256sum }}
{{- end }}
{{- end -}}

{{/* The environment of every dts container. Args: root, configMap, secret (names), extraEnv. */}}
{{- define "dts.env" -}}
{{- $root := .root -}}
{{- range $key := list "DJANGO_SECRET_KEY" "DATABASE_URL" "CELERY_BROKER_URL" "DTS_CACHE_URL" "DTS_LIVE_REDIS_URL" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secret }}
      key: {{ $key }}
{{- end }}
{{- range $key := list "DJANGO_SECRET_KEY_FALLBACKS" "ELASTICSEARCH_URL" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dts.envFrom" -}}
- configMapRef:
    name: {{ .configMap }}
{{- with .root.Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dts.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dts.volumes" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod spec's shared head: service account, security, image pull secrets. */}}
{{- define "dts.podSpecCommon" -}}
serviceAccountName: {{ include "dts.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* Scheduling of one component: nodeSelector, tolerations, affinity, spread. Arg: its values. */}}
{{- define "dts.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A probe's timings from values ({enabled, initialDelaySeconds, …}); the caller adds the check. */}}
{{- define "dts.probeTimings" -}}
initialDelaySeconds: {{ int .initialDelaySeconds }}
periodSeconds: {{ int .periodSeconds }}
timeoutSeconds: {{ int .timeoutSeconds }}
failureThreshold: {{ int .failureThreshold }}
{{- end -}}

{{/* The liveness and startup probes of a process without HTTP: its heartbeat file is fresh. */}}
{{- define "dts.heartbeatProbes" -}}
{{- if .livenessProbe.enabled }}
livenessProbe:
  exec:
    command: [python, /app/compose/healthcheck.py]
  {{- include "dts.probeTimings" .livenessProbe | nindent 2 }}
{{- end }}
{{- if .startupProbe.enabled }}
startupProbe:
  exec:
    command: [python, /app/compose/healthcheck.py]
  {{- include "dts.probeTimings" .startupProbe | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod annotations of one component: checksums, the shared ones, its own. */}}
{{- define "dts.podAnnotations" -}}
{{ include "dts.checksumAnnotations" .root }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- with .own }}
{{ toYaml . }}
{{- end }}
{{- end -}}
