//! The soft keyboard lift, as data: when a phone's keyboard covers the place the user last touched
//! (typically the field they are typing into on the remote desktop), the page moves the desktop up by
//! [`KeyboardLift::shift`] so they see what they type; it moves back when the keyboard closes.
//!
//! Browsers say nothing about the keyboard itself; what they show is the visual viewport getting shorter.
//! Some shrink only the visual viewport (Chrome, Safari), some the whole window (`interactive-widget=
//! resizes-content`, Firefox), so the keyboard is measured against the tallest visual viewport seen at
//! the same width, not against `window.innerHeight`. A new width (rotation) starts over.

/// Space kept below the touched point when the keyboard is open (room for the key bar).
pub const KEYBOARD_MARGIN: f64 = 130.0;
/// Height the visual viewport must lose before it counts as a soft keyboard (not a toolbar).
pub const KEYBOARD_MIN_HEIGHT: f64 = 100.0;

/// The visual viewport (`window.visualViewport`), in page (CSS) pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub width: f64,
    pub height: f64,
    /// How far the visual viewport is scrolled down within the layout viewport.
    pub offset_top: f64,
}

/// Remembers the viewport's full height and turns a keyboard into a lift.
#[derive(Debug, Clone, Default)]
pub struct KeyboardLift {
    width: f64,
    tallest: f64,
}

impl KeyboardLift {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a viewport (call it once before any keyboard shows, and on every change); the height the
    /// keyboard takes from it (0 when closed or smaller than [`KEYBOARD_MIN_HEIGHT`]).
    pub fn observe(&mut self, viewport: Viewport) -> f64 {
        if (viewport.width - self.width).abs() >= 1.0 {
            self.width = viewport.width;
            self.tallest = viewport.height;
        }
        self.tallest = self.tallest.max(viewport.height);
        let covered = self.tallest - viewport.height;
        if covered > KEYBOARD_MIN_HEIGHT {
            covered
        } else {
            0.0
        }
    }

    /// How far to move the desktop up (page px, ≥ 0) so the page point `spot_y` (where it is without a
    /// lift) stays visible with [`KEYBOARD_MARGIN`] below it; 0 with no keyboard or no touched spot.
    pub fn shift(&mut self, viewport: Viewport, spot_y: Option<f64>) -> f64 {
        let keyboard = self.observe(viewport);
        match spot_y {
            Some(y) if keyboard > 0.0 => (y + KEYBOARD_MARGIN - (viewport.offset_top + viewport.height)).max(0.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(height: f64) -> Viewport {
        Viewport { width: 390.0, height, offset_top: 0.0 }
    }

    #[test]
    fn a_keyboard_over_the_spot_lifts_it_above_the_keyboard_and_closing_brings_it_back() {
        let mut lift = KeyboardLift::new();
        assert_eq!(lift.shift(phone(844.0), Some(600.0)), 0.0, "no keyboard");
        // The keyboard takes 400 px: the spot at 600 would be hidden; it moves to 444 - 130.
        assert_eq!(lift.shift(phone(444.0), Some(600.0)), 600.0 + KEYBOARD_MARGIN - 444.0);
        // A spot well above the keyboard stays where it is.
        assert_eq!(lift.shift(phone(444.0), Some(200.0)), 0.0);
        // No touched spot: nothing to keep visible.
        assert_eq!(lift.shift(phone(444.0), None), 0.0);
        // Closed again: back home.
        assert_eq!(lift.shift(phone(844.0), Some(600.0)), 0.0);
    }

    #[test]
    fn small_height_changes_are_toolbars_not_keyboards() {
        let mut lift = KeyboardLift::new();
        lift.observe(phone(844.0));
        // The address bar hiding and showing changes the height a little.
        assert_eq!(lift.shift(phone(844.0 - KEYBOARD_MIN_HEIGHT + 1.0), Some(800.0)), 0.0);
        assert_eq!(lift.observe(phone(900.0)), 0.0, "taller: the new full height");
        assert_eq!(lift.observe(phone(780.0)), 120.0, "measured from the tallest");
    }

    #[test]
    fn the_whole_window_shrinking_counts_too() {
        // resizes-content browsers shrink window.innerHeight with the visual viewport: only the history
        // of the viewport tells the keyboard apart.
        let mut lift = KeyboardLift::new();
        lift.observe(phone(844.0));
        assert!(lift.shift(phone(450.0), Some(500.0)) > 0.0);
    }

    #[test]
    fn a_scrolled_visual_viewport_counts_its_offset() {
        let mut lift = KeyboardLift::new();
        lift.observe(phone(844.0));
        let scrolled = Viewport { width: 390.0, height: 444.0, offset_top: 100.0 };
        assert_eq!(lift.shift(scrolled, Some(600.0)), 600.0 + KEYBOARD_MARGIN - 544.0);
    }

    #[test]
    fn rotating_starts_over() {
        let mut lift = KeyboardLift::new();
        lift.observe(phone(844.0));
        // Landscape is shorter, but it is not a keyboard.
        let landscape = Viewport { width: 844.0, height: 390.0, offset_top: 0.0 };
        assert_eq!(lift.shift(landscape, Some(300.0)), 0.0);
        let keyboard = Viewport { width: 844.0, height: 190.0, offset_top: 0.0 };
        assert_eq!(lift.shift(keyboard, Some(300.0)), 300.0 + KEYBOARD_MARGIN - 190.0);
    }
}
