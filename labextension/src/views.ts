/**
 * The status bar item and the sidebar: Lumino widgets that render an
 * `AccelModel` with the virtual DOM, re-rendering at most once per frame.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { h, VirtualDOM, VirtualElement } from '@lumino/virtualdom';
import { Widget } from '@lumino/widgets';

import { IProviderHealth, IRequestRow } from './messages';
import {
  AccelModel,
  formatCost,
  formatCount,
  formatSeconds,
  formatTime,
  rowTokens,
  statusText,
  target
} from './models';

export const accelIcon = new LabIcon({
  name: 'accel-nb:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M13 2 4 14h6.5L9.5 22 20 9.5h-6.5z"/></svg>'
});

/** A widget showing the model of the active notebook's kernel, or none. */
abstract class ModelView extends Widget {
  get model(): AccelModel | null {
    return this._model;
  }

  setModel(model: AccelModel | null): void {
    if (model === this._model) {
      return;
    }
    this._model?.changed.disconnect(this._onChanged, this);
    this._model = model;
    model?.changed.connect(this._onChanged, this);
    this.update();
  }

  dispose(): void {
    this._model?.changed.disconnect(this._onChanged, this);
    super.dispose();
  }

  private _onChanged(): void {
    this.update(); // coalesced by Lumino into one render per animation frame
  }

  private _model: AccelModel | null = null;
}

/** `accel: 1 running · 3 req · 1.2k tok · $0.004`; red on trouble; a click opens the sidebar. */
export class StatusItem extends ModelView {
  constructor(onClick: () => void) {
    super();
    this.addClass('accel-nb-status');
    this.addClass('jp-mod-highlighted');
    this.node.title = 'accel_nb: click to show the sidebar';
    this.node.addEventListener('click', onClick);
    this._text.className = 'jp-StatusBar-TextItem';
    this.node.appendChild(this._text);
  }

  protected onUpdateRequest(): void {
    const model = this.model;
    this._text.textContent = model ? statusText(model) : 'accel: –';
    this.toggleClass('accel-nb-alert', !!model && model.alert);
  }

  private _text = document.createElement('span');
}

/** What the sidebar's buttons do (commands of the extension). */
export interface ISidebarActions {
  openDashboard(): void;
  insertCell(): void;
}

/** Provider health and the recent requests of the active notebook's kernel. */
export class Sidebar extends ModelView {
  constructor(actions: ISidebarActions) {
    super();
    this._actions = actions;
    this.id = 'accel-nb-sidebar';
    this.addClass('accel-nb-sidebar');
    this.title.icon = accelIcon;
    this.title.caption = 'accel_nb';
  }

  /** The name of the notebook whose kernel is shown. */
  setLabel(label: string): void {
    this._label = label;
    this.update();
  }

  protected onUpdateRequest(): void {
    VirtualDOM.render(this._render(), this.node);
  }

  private _render(): VirtualElement[] {
    const head = h.header(
      h.h2('accel_nb'),
      h.div({ className: 'accel-nb-notebook' }, this._label || 'no notebook')
    );
    const model = this.model;
    if (!model) {
      return [head, h.p('Open a notebook to see what its kernel sends.')];
    }
    if (model.state === 'absent') {
      return [
        head,
        h.p(
          'This kernel has not loaded accel_nb. Run ',
          h.code('%load_ext accel_nb'),
          ' in a cell.'
        )
      ];
    }
    if (model.state === 'incompatible') {
      return [
        head,
        h.p(
          `The kernel speaks accel_nb protocol v${model.kernelVersion}, this extension another: ` +
            'install the same accel_nb version in the kernel and in JupyterLab.'
        )
      ];
    }
    return [
      head,
      this._session(model),
      h.div(
        { className: 'accel-nb-actions' },
        h.button(
          {
            className: 'jp-Button',
            onclick: () => this._actions.openDashboard()
          },
          'Open dashboard in notebook'
        ),
        h.button(
          { className: 'jp-Button', onclick: () => this._actions.insertCell() },
          'Insert %%accel cell'
        )
      ),
      h.h3('Providers'),
      providerTable(model.providers.providers),
      h.h3('Recent requests'),
      requestList(model.requests.rows)
    ];
  }

  private _session(model: AccelModel): VirtualElement {
    const s = model.session;
    const cells: [string, string][] = [
      ['requests', formatCount(s.requests)],
      ['running', formatCount(s.in_flight)],
      ['queued', formatCount(s.queued)],
      ['failed', formatCount(s.failed)],
      ['tokens in', formatCount(s.input_tokens)],
      ['tokens out', formatCount(s.output_tokens)],
      ['cost', formatCost(s.cost_usd)]
    ];
    const items: VirtualElement[] = [];
    for (const [name, value] of cells) {
      items.push(h.dt(name), h.dd(value));
    }
    return h.dl({ className: 'accel-nb-session' }, ...items);
  }

  private _actions: ISidebarActions;
  private _label = '';
}

function keyCell(p: IProviderHealth): VirtualElement {
  if (p.key_status === 'missing') {
    return h.td({ className: 'accel-nb-bad' }, 'missing');
  }
  if (p.key_status === 'not_needed') {
    return h.td('none needed');
  }
  const detail = p.keys.map(k => `${k.label}: ${k.state}`).join('\n');
  return h.td({ title: detail }, `${p.keys.length} ok`);
}

function providerTable(providers: readonly IProviderHealth[]): VirtualElement {
  const rows = providers.map(p =>
    h.tr(
      { dataset: { provider: p.id }, title: p.last_error ?? '' },
      h.td(p.id),
      keyCell(p),
      h.td(
        { className: p.breaker === 'closed' ? '' : 'accel-nb-bad' },
        p.breaker
      ),
      h.td(p.cooling_s > 0 ? formatSeconds(p.cooling_s) : '–'),
      h.td(formatCount(p.requests)),
      h.td({ className: p.failed ? 'accel-nb-bad' : '' }, formatCount(p.failed))
    )
  );
  return h.table(
    { className: 'accel-nb-table' },
    h.thead(
      h.tr(
        ...['provider', 'keys', 'breaker', 'cooling', 'req', 'err'].map(t =>
          h.th(t)
        )
      )
    ),
    h.tbody(...rows)
  );
}

/** Two lines a request (target and status; time, latency, tokens, cost): fits a narrow sidebar. */
function requestList(requests: readonly IRequestRow[]): VirtualElement {
  if (!requests.length) {
    return h.p({ className: 'accel-nb-empty' }, 'No requests yet.');
  }
  const items = requests.map(r => {
    const error = r.status === 'error';
    const status = r.cached ? `${r.status} (cached)` : r.status;
    const details = [formatTime(r.time), formatSeconds(r.latency_s)].concat(
      error
        ? [r.error_class ?? 'error']
        : [`${formatCount(rowTokens(r))} tok`, formatCost(r.cost_usd)]
    );
    return h.li(
      {
        className: error ? 'accel-nb-error' : '',
        dataset: { status: r.status },
        title: error ? `${r.error_class}: ${r.error_message}` : (r.key ?? '')
      },
      h.div(
        { className: 'accel-nb-req-head' },
        h.span({ className: 'accel-nb-target' }, target(r)),
        h.span({ className: 'accel-nb-req-status' }, status)
      ),
      h.div({ className: 'accel-nb-req-details' }, details.join(' · '))
    );
  });
  return h.ul({ className: 'accel-nb-requests' }, ...items);
}
