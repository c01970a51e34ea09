//! The dashboard's loop: keys (from `input`'s thread) become `Action`s (`key_action`, pure),
//! data arrives from the source threads as `Action`s, each is applied to the `State`, its
//! `Effect` carried out, and the frame redrawn when something changed. The terminal is
//! restored on every way out: a guard's drop, and ratatui's panic hook.

use std::io::IsTerminal;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Duration;

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::input::{self, Input};
use super::source::Command;
use super::state::{Action, Effect, Mode, State};

/// How long the loop waits for a key before looking at the data channel again.
const TICK: Duration = Duration::from_millis(50);

/// The action of a key in `mode`, if it has one.
pub fn key_action(mode: Mode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Interrupt);
    }
    match mode {
        Mode::Filter => match key.code {
            KeyCode::Enter => Some(Action::FilterCommit),
            KeyCode::Esc => Some(Action::FilterCancel),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        },
        Mode::Detail | Mode::Help => match key.code {
            KeyCode::Esc | KeyCode::Char('q' | 'h') | KeyCode::Backspace | KeyCode::Left => {
                Some(Action::Back)
            }
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            _ => None,
        },
        Mode::List => match key.code {
            KeyCode::Char('q') | KeyCode::Esc => Some(Action::Quit),
            KeyCode::Char('p' | ' ') => Some(Action::TogglePause),
            KeyCode::Char('/') => Some(Action::StartFilter),
            KeyCode::Char('s') => Some(Action::CycleSession),
            KeyCode::Char('[') => Some(Action::SessionsUp),
            KeyCode::Char(']') => Some(Action::SessionsDown),
            KeyCode::Enter | KeyCode::Right => Some(Action::OpenDetail),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            _ => None,
        },
    }
}

/// What the loop needs besides the state.
pub struct Channels {
    pub actions: Receiver<Action>,
    pub commands: Sender<Command>,
    /// Called for `Effect::Interrupt` (Ctrl-C under `run --dash`).
    pub interrupt: Option<Box<dyn Fn() + Send>>,
    /// Quit once the wrapped command ended (no terminal to read a `q` from).
    pub exit_with_command: bool,
}

/// Runs the dashboard in the terminal until the user quits, or the terminal is gone.
pub fn run(state: &mut State, channels: &Channels) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let _restore = RestoreOnDrop;
    let inputs = input::spawn()?;
    let mut dirty = true;
    while !state.quit {
        if dirty {
            let height = terminal.size()?.height;
            if height != state.height {
                state.update(Action::Resized(height));
            }
            terminal.draw(|frame| super::ui::draw(frame, state))?;
            dirty = false;
        }
        match inputs.events.recv_timeout(TICK) {
            Ok(Input::Event(Event::Key(key))) => {
                if let Some(action) = key_action(state.mode, key) {
                    apply(state, action, channels);
                    dirty = true;
                }
            }
            Ok(Input::Event(Event::Resize(..))) => dirty = true,
            Ok(Input::Event(_)) | Err(RecvTimeoutError::Timeout) => {}
            // Nobody is left to look: quit quietly, as after a SIGHUP.
            Ok(Input::Gone) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Input::Failed(err)) => return Err(err),
        }
        // The same, should the hangup come between the input thread's look at the tty and
        // crossterm's read (the thread is then lost in crossterm's loop): a hung-up tty is no
        // terminal any more.
        if !std::io::stdout().is_terminal() {
            break;
        }
        loop {
            match channels.actions.try_recv() {
                Ok(action) => {
                    apply(state, action, channels);
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                // Every source is gone: nothing more will come, but the user may still look.
                Err(TryRecvError::Disconnected) => break,
            }
        }
        if channels.exit_with_command && state.child_exit.is_some() {
            terminal.draw(|frame| super::ui::draw(frame, state))?;
            break;
        }
    }
    Ok(())
}

fn apply(state: &mut State, action: Action, channels: &Channels) {
    match state.update(action) {
        Some(Effect::Refilter(filter)) => {
            let _ = channels.commands.send(Command::Filter(filter));
        }
        Some(Effect::FetchDetail(id)) => {
            let _ = channels.commands.send(Command::Detail(id));
        }
        Some(Effect::Interrupt) => {
            if let Some(interrupt) = &channels.interrupt {
                interrupt();
            }
        }
        None => {}
    }
}

/// Leaves raw mode and the alternate screen however the loop ends.
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_mean_what_the_help_bar_says() {
        let list = |c| key_action(Mode::List, key(c));
        assert_eq!(list(KeyCode::Char('q')), Some(Action::Quit));
        assert_eq!(list(KeyCode::Esc), Some(Action::Quit));
        assert_eq!(list(KeyCode::Char('p')), Some(Action::TogglePause));
        assert_eq!(list(KeyCode::Char('/')), Some(Action::StartFilter));
        assert_eq!(list(KeyCode::Char('s')), Some(Action::CycleSession));
        assert_eq!(list(KeyCode::Char(']')), Some(Action::SessionsDown));
        assert_eq!(list(KeyCode::Char('[')), Some(Action::SessionsUp));
        assert_eq!(list(KeyCode::Enter), Some(Action::OpenDetail));
        assert_eq!(list(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(list(KeyCode::Up), Some(Action::Up));
        assert_eq!(list(KeyCode::Char('?')), Some(Action::ToggleHelp));
        // While typing a filter, letters are text, not commands.
        assert_eq!(
            key_action(Mode::Filter, key(KeyCode::Char('q'))),
            Some(Action::FilterChar('q'))
        );
        assert_eq!(
            key_action(Mode::Detail, key(KeyCode::Esc)),
            Some(Action::Back)
        );
        assert_eq!(
            key_action(
                Mode::Filter,
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(Action::Interrupt)
        );
    }
}
