/**
 * accel_nb in JupyterLab: a status bar item and a sidebar for the active
 * notebook's kernel, three commands, and their settings.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Signal } from '@lumino/signaling';

import { KernelLinks } from './comm';
import { AccelModel } from './models';
import { accelIcon, Sidebar, StatusItem } from './views';

const PLUGIN_ID = 'accel-nb-labextension:plugin';

export namespace CommandIDs {
  export const insertCell = 'accel-nb:insert-cell';
  export const openDashboard = 'accel-nb:open-dashboard';
  export const showSidebar = 'accel-nb:show-sidebar';
}

/** The cell the "Open accel dashboard" command inserts and runs. */
const DASHBOARD_SOURCE = '%accel dashboard';

/** The settings in `schema/plugin.json`, with the same defaults. */
interface ISettings {
  defaultTarget: string;
  maxRequests: number;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Status bar item, sidebar and commands for accel_nb, fed by the kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    statusBar: IStatusBar | null
  ): void => {
    const settings: ISettings = { defaultTarget: 'claude', maxRequests: 50 };
    const links = new KernelLinks(settings.maxRequests);
    const { commands, shell } = app;

    const sidebar = new Sidebar({
      openDashboard: () => void commands.execute(CommandIDs.openDashboard),
      insertCell: () => void commands.execute(CommandIDs.insertCell)
    });
    shell.add(sidebar, 'right', { rank: 900 });
    const status = new StatusItem(
      () => void commands.execute(CommandIDs.showSidebar)
    );

    const show = (panel: NotebookPanel | null): void => {
      const kernel = panel?.sessionContext.session?.kernel;
      const model: AccelModel | null = kernel ? links.attach(kernel) : null;
      status.setModel(model);
      sidebar.setModel(model);
      sidebar.setLabel(panel?.title.label ?? '');
    };
    // Link every notebook's kernel, not just the active one's: a comm the
    // kernel opens must always find its target registered.
    const watch = (panel: NotebookPanel): void => {
      const onKernel = (): void => {
        const kernel = panel.sessionContext.session?.kernel;
        if (kernel) {
          links.attach(kernel);
        }
        if (panel === tracker.currentWidget) {
          show(panel);
        }
      };
      panel.sessionContext.kernelChanged.connect(onKernel);
      onKernel();
    };
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_, panel) => watch(panel));
    tracker.currentChanged.connect((_, panel) => show(panel));
    show(tracker.currentWidget);

    const hasNotebook = (): boolean => tracker.currentWidget !== null;
    commands.addCommand(CommandIDs.insertCell, {
      label: 'Insert %%accel cell',
      caption:
        'Insert a cell below that sends its text to the default target (see settings)',
      icon: accelIcon,
      isEnabled: hasNotebook,
      execute: () => {
        const panel = tracker.currentWidget;
        if (panel) {
          insertCell(panel, `%%accel ${settings.defaultTarget}\n`, false);
        }
      }
    });
    commands.addCommand(CommandIDs.openDashboard, {
      label: 'Open accel dashboard',
      caption: `Insert and run a \`${DASHBOARD_SOURCE}\` cell below the active one`,
      isEnabled: hasNotebook,
      execute: () => {
        const panel = tracker.currentWidget;
        if (panel) {
          insertCell(panel, DASHBOARD_SOURCE, true);
        }
      }
    });
    commands.addCommand(CommandIDs.showSidebar, {
      label: 'Show accel sidebar',
      execute: () => shell.activateById(sidebar.id)
    });
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'accel_nb' });
    }

    if (statusBar) {
      const activeChanged = new Signal<INotebookTracker, void>(tracker);
      tracker.currentChanged.connect(() => activeChanged.emit());
      statusBar.registerStatusItem(`${PLUGIN_ID}:status`, {
        item: status,
        align: 'left',
        rank: 4,
        isActive: hasNotebook,
        activeStateChanged: activeChanged
      });
    }

    if (registry) {
      registry
        .load(PLUGIN_ID)
        .then(loaded => {
          const read = (): void => {
            settings.defaultTarget = loaded.get('defaultTarget')
              .composite as string;
            settings.maxRequests = loaded.get('maxRequests')
              .composite as number;
            links.setMaxRequests(settings.maxRequests);
          };
          read();
          loaded.changed.connect(read);
        })
        .catch(reason =>
          console.warn('accel_nb: settings not loaded, using defaults', reason)
        );
    }
  }
};

/** Insert a code cell with `source` below the active cell, then run it or start editing it. */
function insertCell(panel: NotebookPanel, source: string, run: boolean): void {
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  NotebookActions.changeCellType(notebook, 'code');
  const cell = notebook.activeCell;
  if (!cell) {
    return;
  }
  cell.model.sharedModel.setSource(source);
  if (run) {
    void NotebookActions.run(notebook, panel.sessionContext);
  } else {
    // On the next frame, once the palette (or a button) has taken its focus back.
    requestAnimationFrame(() => {
      notebook.activate();
      notebook.mode = 'edit';
      cell.editor?.setCursorPosition({
        line: source.split('\n').length - 1,
        column: 0
      });
    });
  }
}

export default plugin;
