import ts from 'typescript'

// tsc on in-memory files, as an agent would type-check a script against /api/tools.d.ts:
// --strict, lib es2023 only, no @types (a script has no DOM, fetch, timers or process).
const OPTIONS: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, lib: ['lib.es2023.d.ts'], types: [], skipLibCheck: true }

// The library's declaration files, parsed once for every check of the process: they never change,
// and parsing them again was most of a check's time (TypeScript's language service shares them
// between programs the same way).
const libraryFiles = new Map<string, ts.SourceFile | undefined>()

/** The diagnostics (as "file:line: message") of compiling these files together. */
export function typeCheck (files: Record<string, string>): string[] {
  const host = ts.createCompilerHost(OPTIONS)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, version, onError) => {
    if (name in files) return ts.createSourceFile(name, files[name], version)
    if (!libraryFiles.has(name)) libraryFiles.set(name, getSourceFile(name, version, onError))
    return libraryFiles.get(name)
  }
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (name) => name in files || fileExists(name)
  const program = ts.createProgram(Object.keys(files), OPTIONS, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file !== undefined && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : ''
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n')
  })
}

/** A script (a function body) wrapped as the declarations' header says, checked against them. */
export function typeCheckScript (declarations: string, script: string): string[] {
  return typeCheck({ '/tools.d.ts': declarations, '/script.ts': `async function script (): Promise<unknown> {\n${script}\n}\n` })
}
