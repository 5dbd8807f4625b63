/**
 * The stand-in behind the `talosctl`, `kubectl` and `helm` stubs (plain JS: runs without tsx).
 *
 * Each call appends one JSON line to $TLAB_STUB_LOG:
 *   { t, cmd, args, cwd, env: { KUBECONFIG, TALOSCONFIG, DOCKER_HOST, TLAB_* … }, rule, exitCode }
 * and answers from the rules in $TLAB_STUB_RULES (a JSON array, or `{ "rules": [...] }`); the
 * first rule that matches wins; no match: exit 0, no output.
 *
 * A rule:
 *   cmd            'talosctl' | 'kubectl' | 'helm' | a list of them | '*' (default: any)
 *   match          regular expression over the arguments joined by one space (default: any)
 *   stdout, stderr text to print ({{…}} placeholders below)
 *   stdoutPerNode  printed once per node of $TLAB_STUB_NODES (a count N → node-1…node-N, or
 *                  comma-separated names); `{name}` and `{i}` are replaced
 *   exitCode       default 0
 *   delayMs        wait before answering
 *   writeFiles     one or a list of:
 *     argAfter          the file is the argument after this token (a flag such as '--output', or
 *                       a word such as 'kubeconfig'; `--flag=value` works too); a list = first found
 *     name              when set, that argument is a directory and the file is <dir>/<name>
 *     content           what to write ({{…}} placeholders below), or
 *     copyFromArgAfter  copy the file named by the argument after this token instead
 *     onlyIfListed      { argAfter, item }: write only when that argument is absent or its
 *                       comma-separated list holds item (talosctl's --output-types)
 *     mode              file mode (default 0o644)
 *   Placeholders: {{after:TOKEN}} / {{after:TOKEN:N}} the (Nth) argument after TOKEN,
 *   {{env:NAME}} an environment variable.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const list = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** the nth argument after the first occurrence of one of `tokens` (or the value of `token=value`) */
export function argAfter(args, tokens, n = 1) {
  for (const tok of list(tokens)) {
    for (let i = 0; i < args.length; i++) {
      if (args[i] === tok) return args[i + n];
      if (n === 1 && tok.startsWith('-') && args[i].startsWith(`${tok}=`)) return args[i].slice(tok.length + 1);
    }
  }
  return undefined;
}

export function expand(text, args, env) {
  return String(text ?? '').replace(/\{\{(after|env):([^}]+)\}\}/g, (_, kind, spec) => {
    if (kind === 'env') return env[spec] ?? '';
    const m = /^(.*?)(?::(\d+))?$/.exec(spec);
    return argAfter(args, m[1], m[2] ? Number(m[2]) : 1) ?? '';
  });
}

export function nodeNames(env) {
  const v = (env.TLAB_STUB_NODES ?? '').trim();
  if (!v) return [];
  if (/^\d+$/.test(v)) return Array.from({ length: Number(v) }, (_, i) => `node-${i + 1}`);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function findRule(rules, cmd, args) {
  const joined = args.join(' ');
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    const cmds = list(r.cmd ?? '*');
    if (!cmds.includes('*') && !cmds.includes(cmd)) continue;
    if (r.match !== undefined && !new RegExp(r.match, r.flags ?? '').test(joined)) continue;
    return i;
  }
  return -1;
}

function loadRules(env) {
  const f = env.TLAB_STUB_RULES;
  if (!f || !existsSync(f)) return [];
  const j = JSON.parse(readFileSync(f, 'utf8'));
  return Array.isArray(j) ? j : (j.rules ?? []);
}

const ENV_KEYS = /^(TLAB_.*|KUBECONFIG|TALOSCONFIG|DOCKER_HOST|HELM_.*)$/;

export async function main(cmd) {
  const args = process.argv.slice(2);
  const env = process.env;
  let rules;
  try {
    rules = loadRules(env);
  } catch (e) {
    process.stderr.write(`${cmd} stub: cannot read rules ${env.TLAB_STUB_RULES}: ${e.message}\n`);
    process.exitCode = 2;
    return;
  }
  const idx = findRule(rules, cmd, args);
  const rule = idx >= 0 ? rules[idx] : {};
  let exitCode = rule.exitCode ?? 0;
  let stdout = expand(rule.stdout, args, env);
  let stderr = expand(rule.stderr, args, env);
  if (rule.stdoutPerNode !== undefined) {
    stdout += nodeNames(env)
      .map((name, i) => rule.stdoutPerNode.replaceAll('{name}', name).replaceAll('{i}', String(i + 1)))
      .join('');
  }
  try {
    for (const w of list(rule.writeFiles)) {
      if (w.onlyIfListed) {
        const l = argAfter(args, w.onlyIfListed.argAfter);
        if (l !== undefined && !l.split(',').includes(w.onlyIfListed.item)) continue;
      }
      const at = argAfter(args, w.argAfter);
      if (at === undefined || at.startsWith('-')) throw new Error(`rule #${idx} writes a file after ${list(w.argAfter).join('/')} but the arguments have none: ${args.join(' ')}`);
      const file = w.name ? join(at, w.name) : at;
      mkdirSync(dirname(file), { recursive: true });
      if (w.copyFromArgAfter !== undefined) {
        const from = argAfter(args, w.copyFromArgAfter);
        if (!from || !existsSync(from)) throw new Error(`rule #${idx} copies the file after ${list(w.copyFromArgAfter).join('/')}, which does not exist: ${from}`);
        copyFileSync(from, file);
      } else {
        writeFileSync(file, expand(w.content, args, env), { mode: w.mode ?? 0o644 });
      }
    }
  } catch (e) {
    stdout = '';
    stderr = `${cmd} stub: ${e.message}\n`;
    exitCode = 2;
  }
  if (env.TLAB_STUB_LOG) {
    const envSubset = Object.fromEntries(Object.entries(env).filter(([k]) => ENV_KEYS.test(k)));
    const entry = { t: new Date().toISOString(), cmd, args, cwd: process.cwd(), env: envSubset, rule: idx >= 0 ? idx : null, exitCode };
    appendFileSync(env.TLAB_STUB_LOG, JSON.stringify(entry) + '\n');
  }
  if (rule.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
  if (stdout) process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  process.exitCode = exitCode;
}
