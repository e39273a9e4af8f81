// The slice of the Common Expression Language that workload identity pool providers are written with in practice,
// for the GCP emulator's attribute mappings and conditions: field access on `assertion`, `google` and `attribute`
// (dotted or ['bracketed']), string and boolean literals, ==, !=, startsWith, endsWith, contains, `in` a list literal,
// !, && and ||, and parentheses. Anything else is refused when the provider is created, loudly: an emulator that
// quietly accepted a condition it cannot evaluate would pass tests that production fails.

export type Value = string | boolean | number | null | Value[] | { [key: string]: Value } | undefined;

type Node =
  | { kind: 'literal'; value: Value }
  | { kind: 'list'; items: Node[] }
  | { kind: 'ident'; name: string }
  | { kind: 'field'; target: Node; name: string }
  | { kind: 'call'; target: Node; fn: 'startsWith' | 'endsWith' | 'contains'; arg: Node }
  | { kind: 'not'; operand: Node }
  | { kind: 'binary'; op: '==' | '!=' | '&&' | '||' | 'in'; left: Node; right: Node };

export class CelError extends Error {}

const ROOTS = new Set(['assertion', 'google', 'attribute']);
const FUNCTIONS = new Set(['startsWith', 'endsWith', 'contains']);

type Token = { kind: 'string' | 'ident' | 'op' | 'number'; text: string; value?: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source.charAt(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let value = '';
      let j = i + 1;
      for (; j < source.length && source.charAt(j) !== c; j++) {
        if (source.charAt(j) === '\\') {
          j++;
          const escaped = source.charAt(j);
          value += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : escaped;
        } else {
          value += source.charAt(j);
        }
      }
      if (j >= source.length) throw new CelError(`unterminated string at ${i}`);
      tokens.push({ kind: 'string', text: source.slice(i, j + 1), value });
      i = j + 1;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (['==', '!=', '&&', '||'].includes(two)) {
      tokens.push({ kind: 'op', text: two });
      i += 2;
      continue;
    }
    if ('()[].,!'.includes(c)) {
      tokens.push({ kind: 'op', text: c });
      i++;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i));
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0] });
      i += ident[0].length;
      continue;
    }
    const number = /^[0-9]+/.exec(source.slice(i));
    if (number) {
      tokens.push({ kind: 'number', text: number[0] });
      i += number[0].length;
      continue;
    }
    throw new CelError(`unsupported character ${JSON.stringify(c)} at ${i}`);
  }
  return tokens;
}

class Parser {
  readonly #tokens: Token[];
  #at = 0;

  constructor(source: string) {
    this.#tokens = tokenize(source);
  }

  parse(): Node {
    const node = this.#or();
    if (this.#at < this.#tokens.length) throw new CelError(`unexpected ${this.#tokens[this.#at]?.text ?? ''}`);
    return node;
  }

  #peek(text?: string): Token | undefined {
    const t = this.#tokens[this.#at];
    return text === undefined || t?.text === text ? t : undefined;
  }

  #take(text: string): void {
    if (!this.#peek(text)) throw new CelError(`expected ${text}${this.#tokens[this.#at] ? ` before ${this.#tokens[this.#at]?.text ?? ''}` : ' at the end'}`);
    this.#at++;
  }

  #or(): Node {
    let left = this.#and();
    while (this.#peek('||')) {
      this.#at++;
      left = { kind: 'binary', op: '||', left, right: this.#and() };
    }
    return left;
  }

  #and(): Node {
    let left = this.#comparison();
    while (this.#peek('&&')) {
      this.#at++;
      left = { kind: 'binary', op: '&&', left, right: this.#comparison() };
    }
    return left;
  }

  #comparison(): Node {
    const left = this.#unary();
    const op = this.#peek('==') ?? this.#peek('!=') ?? this.#peek('in');
    if (!op) return left;
    this.#at++;
    return { kind: 'binary', op: op.text as '==' | '!=' | 'in', left, right: this.#unary() };
  }

  #unary(): Node {
    if (this.#peek('!')) {
      this.#at++;
      return { kind: 'not', operand: this.#unary() };
    }
    return this.#postfix(this.#primary());
  }

  #primary(): Node {
    const t = this.#tokens[this.#at];
    if (!t) throw new CelError('unexpected end of expression');
    this.#at++;
    if (t.kind === 'string') return { kind: 'literal', value: t.value ?? '' };
    if (t.text === '(') {
      const inner = this.#or();
      this.#take(')');
      return inner;
    }
    if (t.text === '[') {
      const items: Node[] = [];
      while (!this.#peek(']')) {
        items.push(this.#or());
        if (!this.#peek(']')) this.#take(',');
      }
      this.#take(']');
      return { kind: 'list', items };
    }
    if (t.kind === 'ident' && (t.text === 'true' || t.text === 'false')) return { kind: 'literal', value: t.text === 'true' };
    if (t.kind === 'ident' && ROOTS.has(t.text)) return { kind: 'ident', name: t.text };
    throw new CelError(`unsupported ${t.kind === 'number' ? 'number' : `name ${t.text}`}: the emulator knows assertion, google, attribute, strings and booleans`);
  }

  #postfix(node: Node): Node {
    for (;;) {
      if (this.#peek('.')) {
        this.#at++;
        const name = this.#tokens[this.#at];
        if (name?.kind !== 'ident') throw new CelError('expected a field or function name after .');
        this.#at++;
        if (this.#peek('(')) {
          if (!FUNCTIONS.has(name.text)) throw new CelError(`unsupported function ${name.text}: the emulator knows ${[...FUNCTIONS].join(', ')}`);
          this.#at++;
          const arg = this.#or();
          this.#take(')');
          node = { kind: 'call', target: node, fn: name.text as 'startsWith', arg };
        } else {
          node = { kind: 'field', target: node, name: name.text };
        }
      } else if (this.#peek('[')) {
        this.#at++;
        const key = this.#tokens[this.#at];
        if (key?.kind !== 'string') throw new CelError('the emulator indexes only with a string literal');
        this.#at++;
        this.#take(']');
        node = { kind: 'field', target: node, name: key.value ?? '' };
      } else {
        return node;
      }
    }
  }
}

export interface Expression {
  source: string;
  evaluate(bindings: Record<string, Value>): Value;
}

/** Parses `source`; throws CelError naming what the emulator does not support. */
export function compile(source: string): Expression {
  const root = new Parser(source).parse();
  return { source, evaluate: (bindings) => evaluate(root, bindings) };
}

function evaluate(node: Node, bindings: Record<string, Value>): Value {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'list':
      return node.items.map((i) => evaluate(i, bindings));
    case 'ident':
      return bindings[node.name];
    case 'field': {
      const target = evaluate(node.target, bindings);
      if (target === null || typeof target !== 'object' || Array.isArray(target)) throw new CelError(`no such key: ${node.name}`);
      if (!(node.name in target)) throw new CelError(`no such key: ${node.name}`);
      return target[node.name];
    }
    case 'call': {
      const target = evaluate(node.target, bindings);
      const arg = evaluate(node.arg, bindings);
      if (typeof target !== 'string' || typeof arg !== 'string') throw new CelError(`${node.fn} needs strings`);
      return node.fn === 'startsWith' ? target.startsWith(arg) : node.fn === 'endsWith' ? target.endsWith(arg) : target.includes(arg);
    }
    case 'not': {
      const value = evaluate(node.operand, bindings);
      if (typeof value !== 'boolean') throw new CelError('! needs a boolean');
      return !value;
    }
    case 'binary': {
      if (node.op === '&&' || node.op === '||') {
        const left = evaluate(node.left, bindings);
        if (typeof left !== 'boolean') throw new CelError(`${node.op} needs booleans`);
        if (node.op === '&&' ? !left : left) return left;
        const right = evaluate(node.right, bindings);
        if (typeof right !== 'boolean') throw new CelError(`${node.op} needs booleans`);
        return right;
      }
      const left = evaluate(node.left, bindings);
      const right = evaluate(node.right, bindings);
      if (node.op === 'in') {
        if (!Array.isArray(right)) throw new CelError('in needs a list');
        return right.some((r) => JSON.stringify(r) === JSON.stringify(left));
      }
      const equal = JSON.stringify(left) === JSON.stringify(right);
      return node.op === '==' ? equal : !equal;
    }
  }
}
