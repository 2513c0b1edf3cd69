//! Project files (the page's Save project) in the CLI: the same pictures, classes, split, seed and
//! settings train here; `graft project info|unpack|pack` shows, unpacks and makes them.

use std::path::Path;
use std::process::ExitCode;

use graft_data::Dataset;
use graft_project::{
    pictures_as_class_folders, prepare_file, read_project, write_project, ModelRecord, ModelStatus, Project,
};
use graft_train::{ExportBundle, TrainConfig, TrainedModel, WEIGHTS_FILE};

use crate::args::{ProjectCommand, TrainOptions};

/// What a run trains on: a folder of class folders, or a project file.
pub struct RunData {
    pub cfg: TrainConfig,
    pub dataset: Dataset,
    pub project: Option<Project>,
}

pub fn read(path: &Path) -> Result<Project, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_project(&bytes).map_err(|e| format!("{}: not a graft project: {e}", path.display()))
}

/// Opens `opts.data_dir`: a project's settings are the run's, overridden by the flags given.
pub fn open_run_data(opts: &TrainOptions) -> Result<RunData, String> {
    let path = &opts.data_dir;
    if path.is_dir() {
        let cfg = opts.config()?;
        let dataset = Dataset::from_folder(path, cfg.preprocess()).map_err(|e| e.to_string())?;
        return Ok(RunData { cfg, dataset, project: None });
    }
    let project = read(path)?;
    let cfg = opts.config_over(project.settings.train.clone())?;
    let dataset = project.dataset(cfg.preprocess()).map_err(|e| e.to_string())?;
    Ok(RunData { cfg, dataset, project: Some(project) })
}

/// The project with the run's model and settings, as the page would keep them.
pub fn with_model(
    mut project: Project,
    cfg: TrainConfig,
    trained: &TrainedModel,
    bundle: &ExportBundle,
    status: ModelStatus,
) -> Result<Vec<u8>, String> {
    let weights = bundle.file(WEIGHTS_FILE).ok_or("the export has no weights")?;
    project.settings.train = cfg;
    project.model = Some(ModelRecord { manifest: trained.manifest.clone(), weights: weights.into(), status });
    write_project(&project).map_err(|e| e.to_string())
}

pub fn run(command: &ProjectCommand) -> Result<ExitCode, String> {
    match command {
        ProjectCommand::Info { project } => info(&read(project)?),
        ProjectCommand::Unpack { project, dir } => unpack(&read(project)?, dir)?,
        ProjectCommand::Pack { dir, out } => pack(dir, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn info(project: &Project) {
    println!(
        "{} classes, {} pictures ({:.1} MB of prepared copies)",
        project.classes.len(),
        project.images.len(),
        project.image_bytes() as f64 / 1e6
    );
    for class in &project.classes {
        println!("  {:<20} {} pictures", class.name, project.count(class.id));
    }
    let t = &project.settings.train;
    println!(
        "settings: {} head, {} mode, {} epochs, lr {:e}, backbone ratio {}, warm-up {}, batch {}, validation {:.0} %, seed {}",
        format!("{:?}", project.settings.head).to_lowercase(),
        t.mode.label(),
        t.epochs,
        t.lr,
        t.backbone_ratio,
        t.warmup_epochs,
        t.batch_size,
        t.val_fraction * 100.0,
        t.seed
    );
    match &project.model {
        None => println!("model: none yet"),
        Some(m) => {
            let accuracy = m.manifest.metrics.as_ref().and_then(|s| s.evaluation.as_ref()).map(|e| e.accuracy);
            let accuracy = accuracy.map_or_else(String::new, |a| format!(", validation accuracy {:.1} %", a * 100.0));
            println!("model: {} ({}{accuracy})", m.status.describe(), m.manifest.created_by);
        }
    }
}

fn unpack(project: &Project, dir: &Path) -> Result<(), String> {
    let files = pictures_as_class_folders(project).map_err(|e| e.to_string())?;
    for (name, bytes) in &files {
        let path = dir.join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("wrote {} pictures in {} class folders under {}", files.len(), project.classes.len(), dir.display());
    Ok(())
}

fn pack(dir: &Path, out: &Path) -> Result<(), String> {
    let folder = Dataset::from_folder(dir, TrainConfig::default().preprocess()).map_err(|e| e.to_string())?;
    let preprocess = TrainConfig::default().preprocess();
    let mut project = Project { classes: Vec::new(), ..Project::default() };
    let mut refused = 0;
    for (label, name) in folder.classes.iter().enumerate() {
        let class = project.add_class(name);
        for item in folder.items.iter().filter(|i| i.label == label) {
            let bytes = std::fs::read(dir.join(&item.name)).map_err(|e| format!("{}: {e}", item.name))?;
            match prepare_file(&bytes, &item.name, &preprocess) {
                Ok(prepared) => {
                    project.add_image(class, item.name.clone(), prepared);
                }
                Err(_) => refused += 1,
            }
        }
    }
    let bytes = write_project(&project).map_err(|e| e.to_string())?;
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "wrote {}: {} classes, {} pictures ({} files skipped)",
        out.display(),
        project.classes.len(),
        project.images.len(),
        refused + folder.errors.len()
    );
    Ok(())
}
