// Loaded on demand by the Playground: CodeMirror is most of the console's weight.
import { EditorState, Compartment } from '@codemirror/state'
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from '@codemirror/view'
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands'
import { javascript } from '@codemirror/lang-javascript'
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput } from '@codemirror/language'
import { autocompletion, closeBrackets, completionKeymap, type CompletionContext, type CompletionResult } from '@codemirror/autocomplete'
import { lintGutter, setDiagnostics } from '@codemirror/lint'
import type { ToolCompletion } from './completions.ts'
import type { SandboxModule } from './api.ts'

export interface ScriptEditor {
  getCode: () => string
  setLanguage: (language: 'javascript' | 'typescript') => void
  setTools: (tools: ToolCompletion[]) => void
  /** The modules `import … from '…'` and `import('…')` complete. */
  setModules: (modules: SandboxModule[]) => void
  /** Marks the error at a 1-based line and column, or clears the mark with null. */
  markError: (at: { line: number, column: number, message: string } | null) => void
  focus: () => void
  destroy: () => void
}

export function createEditor (parent: HTMLElement, options: { doc: string, language: 'javascript' | 'typescript', onRun: () => void, labelledBy: string }): ScriptEditor {
  const languageConf = new Compartment()
  let tools: ToolCompletion[] = []
  let modules: SandboxModule[] = []

  const complete = (context: CompletionContext): CompletionResult | null => {
    const before = context.state.sliceDoc(Math.max(0, context.pos - 300), context.pos)
    // callTool('da|  → tool names
    const name = /callTool\(\s*(['"`])([\w:.-]*)$/.exec(before)
    if (name !== null) {
      const quote = name[1] as string
      return {
        from: context.pos - (name[2] as string).length,
        options: tools.map((t) => ({ label: t.name, type: 'function', detail: t.detail, info: t.info, apply: `${t.name}${quote}` })),
        validFor: /^[\w:.-]*$/
      }
    }
    // import { z } from 'zo|  or  import('zo|  → the sandbox modules
    const spec = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])([\w@./-]*)$/m.exec(before)
    if (spec !== null) {
      const quote = spec[1] as string
      return {
        from: context.pos - (spec[2] as string).length,
        options: modules.map((m) => ({ label: m.name, type: 'namespace', detail: m.version, info: m.description, apply: `${m.name}${quote}` })),
        validFor: /^[\w@./-]*$/
      }
    }
    // callTool('data:query', { li|  → that tool's argument names
    const args = /callTool\(\s*['"`]([\w:.-]+)['"`]\s*,\s*\{[^{}]*?(?:^|[{,\s])([\w$]*)$/.exec(before)
    if (args !== null) {
      const tool = tools.find((t) => t.name === args[1])
      if (tool === undefined || tool.args.length === 0) return null
      return { from: context.pos - (args[2] as string).length, options: tool.args.map((a) => ({ label: a, type: 'property', detail: tool.name })), validFor: /^[\w$]*$/ }
    }
    const word = context.matchBefore(/[\w$]+/)
    if (word === null || (word.from === word.to && !context.explicit)) return null
    return {
      from: word.from,
      options: [
        { label: 'callTool', type: 'function', detail: '(name, args) => Promise', info: 'Calls a host tool; see the Tools page' },
        { label: 'console', type: 'variable', detail: 'log, info, warn, error' }
      ]
    }
  }

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: options.doc,
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        lintGutter(),
        languageConf.of(javascript({ typescript: options.language === 'typescript' })),
        autocompletion({ override: [complete], activateOnTyping: true }),
        keymap.of([
          { key: 'Mod-Enter', run: () => { options.onRun(); return true } },
          ...completionKeymap, ...defaultKeymap, ...historyKeymap, indentWithTab
        ]),
        // CodeMirror mounts its styles as <style> elements: the page's CSP admits them by the
        // per-response nonce the service put in the page (plugins/console.ts).
        EditorView.cspNonce.of(document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? ''),
        EditorView.contentAttributes.of({ 'aria-labelledby': options.labelledBy, 'aria-multiline': 'true', 'data-testid': 'editor' }),
        EditorView.theme({ '&': { minHeight: '14rem', fontSize: '14px' }, '.cm-scroller': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' } })
      ]
    })
  })

  return {
    getCode: () => view.state.doc.toString(),
    setLanguage: (language) => { view.dispatch({ effects: languageConf.reconfigure(javascript({ typescript: language === 'typescript' })) }) },
    setTools: (next) => { tools = next },
    setModules: (next) => { modules = next },
    markError: (at) => {
      if (at === null) { view.dispatch(setDiagnostics(view.state, [])); return }
      const doc = view.state.doc
      const line = doc.line(Math.min(Math.max(at.line, 1), doc.lines))
      // One character at the position; at the end of a line, the last one (an empty range
      // would be drawn as a point that is easy to miss).
      let from = Math.min(line.from + Math.max(at.column - 1, 0), line.to)
      if (from === line.to && from > line.from) from--
      const to = Math.min(from + 1, line.to)
      view.dispatch(setDiagnostics(view.state, [{ from, to, severity: 'error', message: at.message }]))
      view.dispatch({ selection: { anchor: from }, scrollIntoView: true })
    },
    focus: () => { view.focus() },
    destroy: () => { view.destroy() }
  }
}
