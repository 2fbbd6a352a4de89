{{/*
The Deployment of a process without HTTP (worker group, scheduler, relay, indexer): a start
script, its metrics port, and the heartbeat probes. Args: root; component; group (a worker group's
name, or ""); values (the component's values, a worker group's merged with workers.defaults);
metricsPort; env (extra EnvVars, a list); autoscaled (true: the replicas are the autoscaler's).
*/}}
{{- define "dts.processDeployment" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $labels := dict "root" $root "component" .component "group" .group -}}
{{- $name := include "dts.componentName" (dict "root" $root "component" (.group | empty | ternary .component (printf "%s-%s" .component .group))) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "dts.componentLabels" $labels | nindent 4 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ int $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "dts.componentSelectorLabels" $labels | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "dts.componentLabels" $labels | nindent 8 }}
        {{- with $root.Values.podLabels }}{{ toYaml . | nindent 8 }}{{ end }}
        {{- with $values.podLabels }}{{ toYaml . | nindent 8 }}{{ end }}
      annotations:
        {{- include "dts.podAnnotations" (dict "root" $root "own" $values.podAnnotations) | nindent 8 }}
    spec:
      {{- include "dts.podSpecCommon" $root | nindent 6 }}
      terminationGracePeriodSeconds: {{ int $values.terminationGracePeriodSeconds }}
      {{- with include "dts.scheduling" $values }}{{ . | trim | nindent 6 }}{{ end }}
      containers:
        - name: {{ .component }}
          image: {{ include "dts.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: [/app/compose/start/{{ .component }}]
          ports:
            - name: metrics
              containerPort: {{ int .metricsPort }}
              protocol: TCP
          env:
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- include "dts.env" (dict "root" $root "secret" (include "dts.secretName" $root) "extraEnv" $values.extraEnv) | nindent 12 }}
          envFrom:
            {{- include "dts.envFrom" (dict "root" $root "configMap" (include "dts.configMapName" $root)) | nindent 12 }}
          {{- with include "dts.heartbeatProbes" $values }}{{ . | trim | nindent 10 }}{{ end }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "dts.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "dts.volumes" $root | nindent 8 }}
{{- end -}}
