import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStudyText, planStudy } from '@llem/domain';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Every README.md of the repository (not in node_modules or dist) and every file of examples/. */
function documents(): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      const path = join(dir, name);
      const info = statSync(path);
      if (info.isDirectory() && depth < 3) walk(path, depth + 1);
      else if (info.isFile() && name === 'README.md') found.push(path);
    }
  };
  walk(root, 0);
  return found.sort();
}

interface Block {
  file: string;
  line: number;
  lang: string;
  text: string;
}

/** The fenced code blocks of a Markdown file, with the line each starts on. */
function blocks(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Block[] = [];
  let open: { lang: string; line: number; body: string[] } | null = null;
  for (const [i, line] of lines.entries()) {
    const fence = /^\s*```(\w*)/.exec(line);
    if (fence && open === null) open = { lang: fence[1] ?? '', line: i + 1, body: [] };
    else if (/^\s*```\s*$/.test(line) && open) {
      out.push({
        file: relative(root, file),
        line: open.line,
        lang: open.lang,
        text: open.body.join('\n'),
      });
      open = null;
    } else open?.body.push(line);
  }
  return out;
}

const all = documents().flatMap(blocks);

describe('the examples in the READMEs', () => {
  it('finds the READMEs', () => {
    expect(all.length).toBeGreaterThan(20);
  });

  const studies = all.filter(
    (b) =>
      b.lang === 'yaml' &&
      /^model:/m.test(b.text) &&
      /^engine:/m.test(b.text) &&
      !b.text.startsWith('# not a complete study'),
  );
  it.each(studies.map((b) => [`${b.file}:${b.line}`, b] as const))(
    'study file %s plans',
    (_where, block) => {
      const file = `${block.file}:${block.line}`;
      const plan = planStudy(parseStudyText(block.text, { file, format: 'yaml' }), { file });
      expect(plan.runs.length).toBeGreaterThan(0);
    },
  );

  const snippets = all.filter((b) => b.lang === 'ts' || b.lang === 'typescript');
  it.each(snippets.map((b) => [`${b.file}:${b.line}`, b] as const))(
    'TypeScript %s parses and imports only what @llem packages export',
    async (_where, block) => {
      const source = ts.createSourceFile('snippet.ts', block.text, ts.ScriptTarget.Latest, true);
      const diagnostics = (source as unknown as { parseDiagnostics: ts.Diagnostic[] })
        .parseDiagnostics;
      expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual(
        [],
      );
      for (const statement of source.statements) {
        if (!ts.isImportDeclaration(statement) || statement.importClause?.isTypeOnly) continue;
        const specifier = (statement.moduleSpecifier as ts.StringLiteral).text;
        if (!specifier.startsWith('@llem/')) continue;
        const bindings = statement.importClause?.namedBindings;
        if (!bindings || !ts.isNamedImports(bindings)) continue;
        const names = bindings.elements
          .filter((e) => !e.isTypeOnly)
          .map((e) => (e.propertyName ?? e.name).text);
        const exported = Object.keys(await import(specifier));
        const missing = names.filter((n) => !exported.includes(n));
        expect(missing, `${specifier} does not export ${missing.join(', ')}`).toEqual([]);
      }
    },
  );
});
